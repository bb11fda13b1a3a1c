"""An equal share of the memory for each class seen so far, chosen when a task ends.

With M slots and c classes seen, each class keeps M // c examples (the remainder going to
the lowest-numbered classes). A class that several tasks showed (every class of a rotated
stream) splits its share among those tasks in proportion to how many examples of it each
had, so its examples stay a fair sample of all it was shown; each part is drawn at random
from that task's examples of the class (see :mod:`stabgap.core.memories.base`).
"""

from __future__ import annotations

import torch

from stabgap.core.memories import MEMORIES
from stabgap.core.memories.base import AtTaskEnd, equal_shares


@MEMORIES.register
class ClassBalanced(AtTaskEnd):
    """M // c examples of each of the c classes seen, chosen at each task's end."""

    name = "class-balanced"
    help = "an equal share for each class seen, drawn from the tasks' data when each ends"

    def __init__(self, config, stream, seeds, device, keep_logits=False) -> None:
        super().__init__(config, stream, seeds, device, keep_logits)
        self.shown: dict[tuple, int] = {}  # (task, class) -> examples the task had of it

    def groups(self, task: int) -> dict[tuple, torch.Tensor]:
        lo, hi = self.stream.train_offsets[task - 1], self.stream.train_offsets[task]
        labels = self.stream.train_y[lo:hi]
        out = {}
        for c in labels.unique().tolist():  # one host round-trip, at the task's end
            out[(task, c)] = lo + torch.nonzero(labels == c).flatten()
            self.shown[(task, c)] = len(out[(task, c)])
        return out

    def shares(self, sizes: dict[tuple, int]) -> dict[tuple, int]:
        classes = sorted({c for _, c in sizes})
        out = {}
        for c, share in equal_shares(classes, self.size).items():
            parts = [key for key in sizes if key[1] == c]
            out.update(proportional(share, {key: self.shown[key] for key in parts}))
        return out


def proportional(total: int, weights: dict) -> dict:
    """`total` split in proportion to `weights` by largest remainders (ties to the first).

    Example:
        >>> proportional(10, {"a": 1, "b": 1, "c": 1})
        {'a': 4, 'b': 3, 'c': 3}
    """
    whole = sum(weights.values())
    exact = {key: total * w / whole for key, w in weights.items()}
    out = {key: int(v) for key, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: -(exact[k] - out[k]))
    for key in by_remainder[: total - sum(out.values())]:
        out[key] += 1
    return out
