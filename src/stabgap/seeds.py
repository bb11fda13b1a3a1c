"""One way to derive a seed for one purpose from a run's seed (or a stream's).

Each random stream of a run draws from a generator of its own, seeded with
``derive_seed(seed, purpose)``, so that purposes do not share random numbers. (Before,
the stream's generator was seeded with the stream seed itself, so stream seed 0's
permutations were the very numbers a run of seed 0 drew for its initial weights.)

Two things shape it:

- torch's CPU generator (a Mersenne twister) reads only the low 32 bits of its seed, so
  seeds that differ only above them give the same numbers on a CPU. A new purpose's seed
  is therefore a hash of the purpose and the seed, 64 bits that differ in the low 32 too.
- Earlier runs must be reproduced to the bit, so the purposes that existed keep their
  seeds: the run's three, ``3·seed + k`` (the network's initial weights, the training
  batches, the evaluation subsets), and layerwise proximal replay's,
  ``crc32("lpr")·2³² + seed``, which on a CPU is the run's seed itself (the note above; it
  is kept as it is for the records made with it).

Example:
    >>> derive_seed(5, "init"), derive_seed(5, "batches"), derive_seed(5, "subsets")
    (15, 16, 17)
    >>> derive_seed(0, "stream") % 2**32 != derive_seed(0, "init")  # apart, also on a CPU
    True
"""

from __future__ import annotations

import hashlib
import zlib

MAX_SEED = 2**32  # seeds are whole numbers from 0 to 2³² - 1
RUN_PURPOSES = {"init": 0, "batches": 1, "subsets": 2}  # kept: every earlier run's seeds


def derive_seed(seed: int, purpose: str) -> int:
    """The seed of `purpose`'s generator, below 2⁶⁴ (as torch's generators take).

    Raises:
        ValueError: a seed outside 0 to 2³² - 1.
    """
    if not 0 <= seed < MAX_SEED:
        raise ValueError(f"a seed is a whole number from 0 to {MAX_SEED - 1}, got {seed}")
    if purpose in RUN_PURPOSES:
        return 3 * seed + RUN_PURPOSES[purpose]
    if purpose == "lpr":  # kept for the records made with it
        return (zlib.crc32(b"lpr") << 32) + seed
    digest = hashlib.sha256(f"stabgap:{purpose}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")
