"""Where the `stabgap` command starts (pyproject.toml's console script, ``python -m stabgap``).

The CLI's own module imports torch, which takes a second or so. A Ctrl-C then would be a
traceback from deep inside the imports, or worse: numpy's import, inside torch's, can
swallow the KeyboardInterrupt and fail later ("cannot load module more than once per
process") or let the command carry on as if never interrupted. So while the CLI is being
imported, Ctrl-C stops the process at once, with the same one line and exit status 130
as an interrupt of the work itself (nothing has been written yet); from then on the CLI's
own handler answers it.
"""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED = "stabgap: interrupted; nothing half-written was left behind"
INTERRUPTED_STATUS = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped


def main() -> int:
    """The CLI's main, a Ctrl-C at any moment of its start-up one line and status 130."""
    try:
        before = signal.getsignal(signal.SIGINT)
        # Python's own Ctrl-C only: an ignored SIGINT (a background job) stays ignored
        if before is signal.default_int_handler:
            signal.signal(signal.SIGINT, _stop_while_starting)
        try:
            from stabgap.cli import main as cli_main
        finally:
            signal.signal(signal.SIGINT, before)
        return cli_main()
    except KeyboardInterrupt:  # between the two handlers, or before the CLI's own try
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        return INTERRUPTED_STATUS


def _stop_while_starting(signum, frame) -> None:
    """Ctrl-C during the imports: nothing has run, so exit now rather than raise into them."""
    sys.stderr.write(f"\n{INTERRUPTED}\n")
    sys.stderr.flush()
    os._exit(INTERRUPTED_STATUS)
