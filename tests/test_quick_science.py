"""The quick preset shows the poster's effect on real data (about 20 s on 2 cores)."""

import pytest
from conftest import mnist_dir

from stabgap.metrics import gap_depth
from stabgap.study import run_study


@pytest.mark.slow
def test_quick_baseline_has_a_clear_gap_and_neuronal_decay_shrinks_it():
    records = run_study(
        "quick", ["baseline", "nd"], seeds=[1], overrides={"data_dir": str(mnist_dir())}, out=None
    )
    gd = {r.experiment: gap_depth(r.acc, r.boundaries, task=1, interval=3) for r in records}
    assert gd["baseline"] >= 5.0
    assert gd["nd"] < gd["baseline"] - 2.0
