import pytest

from stabgap.core.config import RunConfig, from_dict, to_dict
from stabgap.core.evaluate import evaluation_steps
from stabgap.errors import StabgapError
from stabgap.studies.presets import PAPER_SEEDS, get_preset


def test_values_are_normalised():
    c = RunConfig(rotations=[0, 90], hidden=[64], lr=1)
    assert c.rotations == (0.0, 90.0) and c.hidden == (64,) and c.lr == 1.0
    assert isinstance(c.lr, float)
    assert from_dict(to_dict(c)) == c


@pytest.mark.parametrize(
    "values,message",
    [
        ({"lrr": 0.1}, "unknown config field 'lrr': did you mean 'lr'"),
        ({"lr": -1e-3}, "lr must be a positive finite number"),
        ({"decay_lambda": float("inf")}, "decay_lambda must be a finite number >= 0, got inf"),
        (
            {"replay": "stratified", "batch_growth": "never", "batch_size": 2},
            "stratified replay needs at least one sample per task",
        ),
        ({"rotations": []}, "rotations must list at least one angle"),
        ({"hidden": [0]}, "hidden widths must be >= 1"),
        ({"replay": "partial"}, "'replay' must be one of none, full, stratified"),
        ({"batch_size": 1.5}, "'batch_size' must be an integer"),
        ({"hidden": "wide"}, "'hidden' must be a list of integers"),
        ({"decay_lambda": -1}, "decay_lambda must be a finite number >= 0"),
        ({"eval_every": 600}, r"eval_every \(600\) must be <= batches_per_task \(500\)"),
        (
            {"eval_every": 500},
            r"eval_every \(500\) equal to batches_per_task evaluates each task only before",
        ),
        ({"reset_optimizer": "yes"}, "'reset_optimizer' must be true or false"),
        ({"betas": [0.9]}, "'betas' must be 2 numbers"),
    ],
)
def test_bad_values_give_one_line_errors(values, message):
    with pytest.raises(StabgapError, match=message) as info:
        from_dict(values)
    assert "\n" not in str(info.value)


def test_a_schedule_that_reads_each_task_after_training_on_it_is_accepted():
    # With a window each task's last batch is evaluated; every batch of one-batch tasks is
    # the reference's schedule; below batches_per_task a point falls inside every task.
    for values in (
        {"eval_every": 500, "eval_switch_window": 5},
        {"eval_every": 600, "eval_switch_window": 5},  # a sparser rest: the window reads each
        {"eval_every": 1, "batches_per_task": 1},
        {"eval_every": 499},
    ):
        from_dict(values)
    # every task read after its updates: 6-batch tasks, every 10th batch and a window of 2
    steps = evaluation_steps(18, per_task=6, every=10, switch_window=2).tolist()
    assert steps == [0, 5, 6, 7, 10, 11, 12, 13, 17]


def test_batch_size_growth_and_reference_eval_rounding():
    paper = get_preset("paper").config("baseline")
    assert [paper.task_batch_size(k) for k in (1, 2, 3)] == [512, 1024, 1536]
    # The reference's quirk: whole batches until at least 2,000 test images.
    assert [paper.task_eval_size(k, 10_000) for k in (1, 2, 3)] == [2048, 2048, 3072]
    no_replay = get_preset("paper").config("no-replay")
    assert no_replay.task_batch_size(3) == 1536  # quirk: grows without replay too
    default = RunConfig(replay="none")
    assert default.task_batch_size(3) == 512 and default.task_eval_size(3, 10_000) == 2000


def test_paper_preset_follows_the_protocol():
    p = get_preset("paper")
    assert p.seeds == PAPER_SEEDS and len(p.seeds) == 15 and len(p.experiments) == 16
    quick = get_preset("quick")
    assert quick.seeds == PAPER_SEEDS[:3]
    base = p.config("baseline")
    assert (base.hidden, base.lr, base.batches_per_task, base.rotations) == (
        (2048, 2048),
        1e-3,
        500,
        (0.0, 80.0, 160.0),
    )
    assert (base.replay, base.decay_lambda, base.batch_order, base.eval_resample) == (
        "full",
        0.0,
        "cycle",
        "fresh",
    )
    assert p.config("nd").decay_lambda == 1e-5
    assert p.config("nd-lambda-5e-5").decay_lambda == 5e-5
    assert p.config("nd-no-replay").replay == "none"
    assert p.config("nd-lr-1e-2").lr == 1e-2
    assert p.config("baseline-width-4096").hidden == (4096, 4096)
    assert p.config("nd-profile").rotations == (0.0,)


def test_unknown_experiment_lists_choices():
    with pytest.raises(StabgapError, match="no experiment 'bogus'; choose from: baseline"):
        get_preset("paper").config("bogus")
