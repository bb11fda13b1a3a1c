"""stabgap: measure the stability gap in continual learning, and what shrinks it."""

__version__ = "0.1.0"
