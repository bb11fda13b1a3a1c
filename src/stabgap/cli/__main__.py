"""`python -m stabgap.cli`: the same as the `stabgap` command.

Python imports the package (torch with it) before this runs, so a Ctrl-C in that first
second is Python's own: a traceback, or, inside numpy's import, swallowed (the command then
goes on). `stabgap` and `python -m stabgap` start light and stop in one line
(stabgap.entry): use those.
"""

import sys

from stabgap.entry import main

sys.exit(main())
