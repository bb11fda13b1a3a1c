"""`python -m stabgap.cli`: the same as the `stabgap` command.

Python imports the package (torch with it) before this runs, so a Ctrl-C in that first
second is Python's own traceback; `stabgap` and `python -m stabgap` start light and say it
in one line (stabgap.entry).
"""

import sys

from stabgap.entry import main

sys.exit(main())
