"""`python -m stabgap`: the same as the `stabgap` command."""

import sys

from stabgap.entry import main

sys.exit(main())
