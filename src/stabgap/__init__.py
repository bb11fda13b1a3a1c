"""stabgap: measure the stability gap in continual learning, and what shrinks it."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``stabgap.Tracker``, imported when first used (the package itself loads nothing)."""
    if name == "Tracker":
        from stabgap.studies.tracker import Tracker

        return Tracker
    raise AttributeError(f"module 'stabgap' has no attribute {name!r}")
