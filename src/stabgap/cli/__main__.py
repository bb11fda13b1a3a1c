"""`python -m stabgap.cli`: the same as the `stabgap` command."""

import sys

from stabgap.cli import main

sys.exit(main())
