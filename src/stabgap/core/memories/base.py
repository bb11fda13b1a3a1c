"""Memories that choose when a task ends: an equal share for each group seen so far.

A group is a task (task-balanced) or a task's examples of one class (class-balanced). When
task k ends, the policy gives every group seen so far its share of the M slots; a group
already stored keeps a random part of its examples (the first ones of its stored random
order), and a new group's examples are drawn at random, without replacement, from the
finished task's training set. Between task ends the memory does not change, so during
task k it holds examples of tasks 1..k-1 only (empty in task 1).
"""

from __future__ import annotations

import torch

from stabgap.core.memories import LogitsOf, Memory


class AtTaskEnd(Memory):
    """The shared mechanics; a policy says what its groups are and what each one gets."""

    def __init__(self, config, stream, seeds, device, keep_logits=False) -> None:
        super().__init__(config, stream, seeds, device, keep_logits)
        # Each group's examples in a random order: (R, n) indices, and their logits.
        self.kept: dict[tuple, torch.Tensor] = {}
        self.kept_logits: dict[tuple, torch.Tensor] = {}

    def groups(self, task: int) -> dict[tuple, torch.Tensor]:
        """The finished task's groups: key -> (N,) indices of their training examples."""
        raise NotImplementedError

    def shares(self, sizes: dict[tuple, int]) -> dict[tuple, int]:
        """Slots for each group, from how many examples each has to choose from."""
        raise NotImplementedError

    def end_task(self, task: int, logits_of: LogitsOf) -> None:
        new = self.groups(task)
        have = {key: kept.shape[1] for key, kept in self.kept.items()}
        have.update({key: len(index) for key, index in new.items()})
        shares = fill_up(self.shares(have), have, self.size)
        for key in self.kept:  # a random part of what it had
            self.kept[key] = self.kept[key][:, : shares[key]]
            if self.logits is not None:
                self.kept_logits[key] = self.kept_logits[key][:, : shares[key]]
        for key, index in new.items():  # a random sample of the finished task's own
            picks = torch.stack(
                [
                    torch.randperm(len(index), generator=g, device=g.device)[: shares[key]]
                    for g in self.generators
                ]
            ).to(self.device)
            self.kept[key] = index[picks]
            if self.logits is not None:
                self.kept_logits[key] = logits_of(self.kept[key]).float()
        self.filled = sum(kept.shape[1] for kept in self.kept.values())
        if self.filled:
            self.slots[:, : self.filled] = torch.cat(list(self.kept.values()), dim=1)
            if self.logits is not None:
                self.logits[:, : self.filled] = torch.cat(list(self.kept_logits.values()), dim=1)


def equal_shares(keys: list, total: int) -> dict:
    """`total` split as evenly as whole numbers allow, the remainder to the first keys.

    Example:
        >>> equal_shares(["a", "b", "c"], 200)
        {'a': 67, 'b': 67, 'c': 66}
    """
    share, extra = divmod(total, len(keys))
    return {key: share + (i < extra) for i, key in enumerate(keys)}


def fill_up(shares: dict, have: dict, total: int) -> dict:
    """Shares cut to what each group has, the slots freed given to the groups that have
    more, in order: a group never holds more than it has, and no slot stays empty while
    a group has examples to spare.

    Example:
        >>> fill_up({"a": 100, "b": 100}, {"a": 30, "b": 500}, 200)
        {'a': 30, 'b': 170}
    """
    out = {key: min(shares[key], have[key]) for key in shares}
    free = total - sum(out.values())
    for key in out:
        more = min(free, have[key] - out[key])
        out[key] += more
        free -= more
    return out
