"""`stabgap profile` at tiny sizes: every field filled, files round-trip, overheads right."""

from __future__ import annotations

import dataclasses
import json
import re
from types import SimpleNamespace

import pytest
import torch
from torch.autograd import DeviceType

from stabgap import study
from stabgap.cli import main
from stabgap.core.data import DATASETS
from stabgap.core.models import MODELS
from stabgap.cost import profile
from stabgap.cost.profile import ProfileResult
from stabgap.studies.presets import get_preset

TINY = dict(hidden=[16, 16], batch_size=8, eval_subset=40)
TINY_OPTIONS = ["--batches=1", "--repeats=2", "--warmup=0", "--hidden=8", "--batch-size=4"]


@pytest.fixture(scope="module")
def cpu_results() -> list[ProfileResult]:
    config = study.profile_base().replace(**TINY)
    return profile.profile_config(
        config, "cpu", n_batches=2, warmup=1, repeats=3, treatment={"decay_lambda": 1e-5}
    )


def test_cpu_results_have_every_field(cpu_results):
    assert {(r.model, r.phase) for r in cpu_results} == {
        (m, p) for m in ("baseline", "nd") for p in profile.PHASES
    }
    for r in cpu_results:
        for f in dataclasses.fields(ProfileResult):
            if f.name != "profiler_self_cuda_ms":
                assert getattr(r, f.name) is not None, f.name
        assert r.device == "cpu" and r.device_name
        assert r.profiler_self_cuda_ms is None  # no CUDA on a CPU-only run
        assert r.wall_ms_median > 0 and r.wall_ms_iqr >= 0
        assert r.profiler_self_cpu_ms > 0
        assert (r.batch_size, r.hidden, r.eval_size) == (8, (16, 16), 40)
        assert r.network == "MLP 784-16-16-10"
        assert (r.n_batches, r.repeats) == (2, 3)
        assert r.torch_version == torch.__version__
        assert r.treatment == ((("decay_lambda", 1e-5),) if r.model == "nd" else ())


def test_write_read_round_trip(cpu_results, tmp_path):
    path = profile.write_profile(cpu_results, tmp_path / "profile-cpu")
    assert path == tmp_path / "profile-cpu" / "profile.json"
    assert [p.name for p in path.parent.iterdir()] == ["profile.json"]  # no temporary left
    json.loads(path.read_text())
    other = [dataclasses.replace(r, device="cuda", profiler_self_cuda_ms=1.5) for r in cpu_results]
    profile.write_profile(other, tmp_path / "profile-cuda")
    assert profile.read_profiles(tmp_path) == cpu_results + other


def _result(model: str, phase: str, wall: float, cpu: float, cuda: float | None, device="cuda"):
    return ProfileResult(
        model=model,
        device=device,
        device_name="test",
        phase=phase,
        wall_ms_median=wall,
        wall_ms_iqr=0.0,
        profiler_self_cpu_ms=cpu,
        profiler_self_cuda_ms=cuda,
        batch_size=512,
        hidden=(2048, 2048),
        torch_version="test",
    )


def test_overhead_on_hand_made_results():
    # The poster's Table 1 means: CPU 18.01 → 19.21 ms (+6.66 %), CUDA 14.60 → 15.85 (+8.56 %).
    results = [
        _result("baseline", "both", 10.0, 18.01, 14.60),
        _result("nd", "both", 12.5, 19.21, 15.85),
        _result("baseline", "train", 4.0, 1.0, 1.0, device="cpu"),
        _result("nd", "train", 3.0, 1.0, None, device="cpu"),
        _result("baseline", "eval", 4.0, 1.0, None),  # no ND partner: left out
    ]
    assert profile.overhead_pct(results) == pytest.approx(
        {("cuda", "both"): 25.0, ("cpu", "train"): -25.0}
    )
    cpu = profile.overhead_pct(results, "profiler_self_cpu_ms")
    cuda = profile.overhead_pct(results, "profiler_self_cuda_ms")
    assert round(cpu["cuda", "both"], 2) == 6.66
    assert round(cuda["cuda", "both"], 2) == 8.56
    assert ("cpu", "train") not in cuda  # None on one side
    with pytest.raises(ValueError, match="two 'nd' results"):
        profile.overhead_pct(results + [_result("nd", "both", 1.0, 1.0, 1.0)])


def test_self_time_totals_follow_the_profiler_table():
    ev = lambda kind, cpu, dev, annotation=False: SimpleNamespace(  # noqa: E731
        device_type=kind,
        self_cpu_time_total=cpu,
        self_device_time_total=dev,
        is_legacy=False,
        is_user_annotation=annotation,
    )
    events = [
        ev(DeviceType.CPU, 100.0, 40.0),  # an op: its kernels are counted as CUDA events
        ev(DeviceType.CUDA, 0.0, 30.0),
        ev(DeviceType.CUDA, 0.0, 10.0),
        ev(DeviceType.CUDA, 0.0, 99.0, annotation=True),  # a user range, not device work
    ]
    assert profile.self_time_totals(events) == (100.0, 40.0)


def test_profile_command_cpu(tmp_path, capfd):
    assert main(["profile", "--device", "cpu", "--out", str(tmp_path), *TINY_OPTIONS]) == 0
    text, err = capfd.readouterr()
    assert "USDT" not in err  # torch's profiler's own start and stop lines, from C++
    assert "CPU-only run" in text and "prof self-CPU" in text
    assert "nd: the baseline with decay_lambda = 1e-05" in text
    assert len(profile.read_profiles(tmp_path / "profile-cpu")) == 6


def test_profile_of_any_remedy(tmp_path, capsys):
    tiny = [*TINY_OPTIONS, "--device=cpu"]
    assert main(["profile", *tiny, "--treatment", "sam_rho=0.05", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "sam_rho=0.05: the baseline with sam_rho = 0.05" in text
    found = profile.read_profiles(tmp_path)
    assert {r.model for r in found} == {"baseline", "sam_rho=0.05"}
    assert {r.treatment for r in found} == {(), (("sam_rho", 0.05),)}
    assert set(profile.overhead_pct(found)) == {("cpu", p) for p in profile.PHASES}
    columns, sentence = profile.cost_columns(tmp_path)
    assert set(columns) == {"baseline", "sam_rho=0.05"}
    assert sentence.startswith("Cost of sam_rho=0.05: measured per batch")
    assert "MACs" not in sentence  # the counted overhead is ND's formula alone

    assert main(["profile", *tiny, "--treatment", "ema_decay=0.99", "--label", "ema"]) == 0
    assert "ema: the baseline with ema_decay = 0.99" in capsys.readouterr().out


def test_a_treatment_of_several_fields_is_named_by_each_value():
    assert profile.treatment_label({"decay_lambda": 1e-5}) == "nd"
    label = profile.treatment_label({"hidden": (32,), "sam_rho": 0.05})
    assert label == "hidden=32 sam_rho=0.05"


@pytest.mark.parametrize(
    "options, message",
    [
        (["--treatment", "sam_roh=0.05"], "unknown config field 'sam_roh'"),
        (["--treatment", "sam_rho"], "--treatment takes FIELD=VALUE, got 'sam_rho'"),
        (["--treatment", "decay_lambda=0"], "the treatment leaves the baseline unchanged"),
        (["--nd-lambda", "1e-4", "--treatment", "decay_lambda=1e-5"], "give λ once"),
        (["--label", "baseline"], "a treatment cannot be named 'baseline'"),
        (["--treatment", "stream_seed=3"], "--treatment stream_seed: a profile times one task"),
        (["--treatment", "stream=permuted"], "--treatment stream: a profile times one task"),
        (["--experiment", "nd"], "--experiment names a preset's experiment: add --preset NAME"),
        (["--preset", "quick-vit", "--experiment", "ndd"], "has no experiment 'ndd'"),
        (["--preset", "quick-resnet", "--hidden", "64"], "hidden applies to model mlp"),
    ],
)
def test_profile_refuses_a_bad_treatment_before_any_work(tmp_path, capsys, options, message):
    out = tmp_path / "out"
    assert main(["profile", "--device", "cpu", "--out", str(out), *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_preset_is_profiled_on_its_own_network_batch_and_lambda(tmp_path, capsys):
    # task 1 of the preset's run, on synthetic images of its dataset's shape: ND at the
    # experiment's λ against the same run without it
    out = tmp_path / "out"
    tiny = ["--device=cpu", "--batches=1", "--repeats=1", "--warmup=0", "--out", str(out)]
    assert main(["profile", *tiny, "--preset", "quick-vit-split", "--experiment", "nd"]) == 0
    text = capsys.readouterr().out
    run = get_preset("quick-vit-split").config("nd")
    network = MODELS["vit"].describe(run, (1, 28, 28), 10)
    found = profile.read_profiles(out)
    assert {r.network for r in found} == {network} and network in text
    assert {r.batch_size for r in found} == {run.task_batch_size(1)}
    assert {r.eval_size for r in found} == {run.task_eval_size(1, 2115)}  # digits 0 and 1
    assert {r.treatment for r in found} == {(), (("decay_lambda", run.decay_lambda),)}
    assert {(r.hidden, r.run, r.warmup) for r in found} == {
        ((), "preset quick-vit-split, nd, task 1", 0)
    }
    assert "baseline: preset quick-vit-split, nd, task 1" in text
    assert f"note: ND at λ = {run.decay_lambda:g}: the run's own" in text
    _, sentence = profile.cost_columns(out)
    assert sentence.startswith(
        f"Cost of nd: measured per batch of training and evaluation of {network} on"
    )
    assert "MACs" not in sentence  # the MLP's formula: not for a ViT

    assert main(["profile", *tiny, "--preset", "quick-vit-split"]) == 0
    assert "profile.json (in place of the profile there)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options, note",
    [
        (["--preset", "methods"], "note: ND at λ = 0.0001: the preset's nd-er-200 experiment's"),
        (
            ["--preset", "methods", "--experiment", "er-2000"],
            "note: ND at λ = 1e-05: the poster's: preset methods has no nd-er-2000 or nd",
        ),
        (["--treatment", "ewc_lambda=1000"], "note: the cost model counts the same work for both"),
        (["--preset", "quick-cnn"], "note: these runs evaluate once every 2 batches"),
    ],
)
def test_a_profile_says_what_its_table_cannot(capsys, options, note):
    tiny = ["--device=cpu", "--batches=1", "--repeats=1", "--warmup=0", "--batch-size=4"]
    assert main(["profile", *tiny, *options]) == 0
    assert note in capsys.readouterr().out


def test_a_profiles_evaluation_is_the_runs(monkeypatch):
    # The 'eval' phase makes the evaluations of task 1 that the run's loop makes: every task
    # where the run evaluates all, each repeat, the statistics at every k-th point only
    from stabgap.core import train

    calls = []

    def counted(net, stream, idx, task, statistics=True):
        calls.append((tuple(idx.shape), task, statistics))
        return evaluate(net, stream, idx, task, statistics)

    evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", counted)
    config = get_preset("quick").config("baseline", {**TINY, "batches_per_task": 5})
    config = config.replace(eval_tasks="all", eval_repeats=2, activity_every=3)
    stream = profile.synthetic_stream(config, "cpu")
    train.train_stack([config], stream)
    # task 1's points but its last (which always has the statistics), 2 repeats each
    in_the_run = calls[: 2 * (config.batches_per_task - 1)]
    calls.clear()
    workload = profile.Workload(config, stream, torch.device("cpu"))
    for _ in range(config.batches_per_task - 1):
        workload.eval()
    assert calls == in_the_run
    assert {shape for shape, *_ in calls} == {(1, stream.n_tasks, 40)}
    assert [s for *_, s in calls[::2]] == [True, False, False, True]
    assert workload.eval_size == 2 * stream.n_tasks * 40


def test_a_replay_that_acts_in_task_1_is_not_said_to_cost_nothing():
    # a reservoir fills within task 1, so its replay is timed there: not "the same work"
    from stabgap.cli.costs import _profile_notes

    base = get_preset("quick").config("baseline", {"batch_growth": "never"})
    same = "the cost model counts the same work for both runs in task 1"
    reservoir = base.replace(replay="memory", memory="reservoir")
    assert not any(same in note for note in _profile_notes(base, reservoir))
    ewc = reservoir.replace(ewc_lambda=1000.0)  # acts from task 2 on: the same work here
    assert any(same in note for note in _profile_notes(reservoir, ewc))


def test_the_table_keeps_its_columns_apart_past_a_second():
    rows = [_result(m, "both", 1274.688, 1.0, None, device="cpu") for m in ("baseline", "nd")]
    rows = [dataclasses.replace(r, wall_ms_iqr=1162.45) for r in rows]
    assert re.search(r" 1274\.688 +1162\.450 ", profile.profile_table(rows))


def test_a_treatment_of_the_network_records_each_runs_own(tmp_path, capsys):
    tiny = [*TINY_OPTIONS, "--device=cpu", "--out", str(tmp_path)]
    assert main(["profile", *tiny, "--treatment", "model=cnn", "--treatment", "channels=2"]) == 0
    networks = {r.model: r.network for r in profile.read_profiles(tmp_path)}
    assert networks["baseline"] == "MLP 784-8-10"
    assert networks["model=cnn channels=2"].startswith("CNN conv 2")
    assert f"MLP 784-8-10 (the treatment's: {networks['model=cnn channels=2']})" in (
        capsys.readouterr().out
    )


def test_synthetic_images_have_the_datasets_shape_and_class_counts():
    images = profile.synthetic_images(DATASETS["cifar10"], seed=1)
    assert tuple(images.train_images.shape) == (50_000, 3, 32, 32)
    assert images.train_images.dtype == torch.uint8 and images.n_classes == 10
    assert torch.bincount(images.train_labels).tolist() == [5000] * 10
    assert torch.bincount(images.test_labels).tolist() == [1000] * 10
    again = profile.synthetic_images(DATASETS["cifar10"], seed=1)
    assert torch.equal(images.test_images, again.test_images)  # seeded


def test_an_older_profile_file_reads_its_nd_lambda(tmp_path):
    rows = [
        {**dataclasses.asdict(_result(m, "both", 1.0, 1.0, None)), "decay_lambda": lam}
        for m, lam in (("baseline", 0.0), ("nd", 1e-5))
    ]
    for row in rows:
        del row["treatment"]
    (tmp_path / "profile.json").write_text(json.dumps({"results": rows}))
    found = profile.read_profiles(tmp_path)
    assert [r.treatment for r in found] == [(), (("decay_lambda", 1e-5),)]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA absent: GPU path not run here")
def test_cuda_results():
    config = study.profile_base().replace(**TINY)
    results = profile.profile_config(
        config, "cuda", n_batches=2, warmup=1, repeats=3, treatment={"decay_lambda": 1e-5}
    )
    for r in results:
        assert r.device == "cuda"
        assert r.wall_ms_median > 0 and r.wall_ms_iqr >= 0
        assert r.profiler_self_cpu_ms > 0  # host-side time
        assert r.profiler_self_cuda_ms is not None and r.profiler_self_cuda_ms > 0
    assert set(profile.overhead_pct(results, "profiler_self_cuda_ms")) == {
        ("cuda", p) for p in profile.PHASES
    }


def test_cost_columns_follow_the_poster(tmp_path):
    gpu = [
        _result("baseline", "both", 20.0, 18.01, 14.60),
        _result("nd", "both", 21.0, 19.21, 15.85),
        _result("nd", "train", 1.0, 1.0, 1.0),
    ]
    cpu = [dataclasses.replace(r, device="cpu", profiler_self_cuda_ms=None) for r in gpu]
    assert profile.cost_columns(tmp_path) == ({}, None)
    profile.write_profile(cpu, tmp_path / "profile" / "profile-cpu")
    columns, _ = profile.cost_columns(tmp_path)
    assert columns["nd"] == {
        "CPU-only time (ms) ↓": "19.21 (+6.7 %)",
        "wall time, cpu (ms) ↓": "21.00 (+5.0 %)",
    }
    profile.write_profile(gpu, tmp_path / "profile" / "profile-cuda")
    columns, sentence = profile.cost_columns(tmp_path)  # the GPU run wins, as on the poster
    assert columns == {  # the poster's 18.01/19.21 and 14.60/15.85: +6.7 % and +8.6 %
        "baseline": {
            "CPU time (ms) ↓": "18.01",
            "CUDA time (ms) ↓": "14.60",
            "wall time, cuda (ms) ↓": "20.00",
        },
        "nd": {
            "CPU time (ms) ↓": "19.21 (+6.7 %)",
            "CUDA time (ms) ↓": "15.85 (+8.6 %)",
            "wall time, cuda (ms) ↓": "21.00 (+5.0 %)",
        },
    }
    assert "+0.070 % MACs" in sentence and "host CPU time +6.7 %" in sentence
    assert "CUDA time +8.6 %" in sentence and "wall time +5.0 %" in sentence


def test_profile_study_profiles_the_preset_scale(tmp_path, monkeypatch):
    asked = {}

    def fake_profile_config(config, device, *args, **kwargs):
        asked.update(config=config, device=device, kwargs=kwargs)
        return [_result(m, "both", 1.0, 1.0, None, device="cpu") for m in ("baseline", "nd")]

    monkeypatch.setattr(profile, "profile_config", fake_profile_config)
    study.profile_study(tmp_path, quick=True, device="cpu")
    assert (asked["config"].hidden, asked["config"].rotations) == ((256, 256), (0.0,))
    assert asked["kwargs"]["treatment"] == {"decay_lambda": 1e-4} and asked[
        "device"
    ] == torch.device("cpu")
    assert (tmp_path / "profile-cpu" / "profile.json").exists()
    study.profile_study(tmp_path / "paper", quick=False, device="cpu")
    assert asked["config"].hidden == (2048, 2048) and asked["config"].batch_size == 512
    assert asked["config"].task_eval_size(1, 10_000) == 2048


def test_a_difference_within_the_spread_of_the_repeats_is_said_to_be_noise():
    def row(model, phase, wall, iqr, size):
        return dataclasses.replace(
            _result(model, phase, wall, 1.0, None, device="cpu"),
            wall_ms_iqr=iqr, eval_size=size, repeats=3,
            treatment=() if model == "baseline" else (("eval_repeats", 2),),
        )  # fmt: skip

    treated = "eval_repeats=2"
    rows = [
        row("baseline", "train", 10.0, 1.0, 512),
        row(treated, "train", 10.6, 0.2, 1024),  # 0.6 ms apart, IQR 1.0: noise
        row("baseline", "eval", 10.0, 1.0, 512),
        row(treated, "eval", 19.0, 1.0, 1024),
    ]
    assert profile.within_spread(rows) == ["cpu train"]
    text = profile.profile_table(rows)
    assert "not shown to differ from the machine's noise: cpu train (3 repeats: take 5" in text
    assert "eval 512 images (the treatment's: 1024)" in text
