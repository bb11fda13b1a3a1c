"""The one exception type for a user's mistake.

Anything raised as :class:`StabgapError` is shown by the CLI as a single line
(no traceback): its message must name the problem and how to fix it.
"""


class StabgapError(Exception):
    """A problem with the user's input or environment, with a one-line fix."""
