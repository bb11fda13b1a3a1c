"""Statistics over seeds: summaries, comparisons, equivalence. Pure: no torch, no training."""
