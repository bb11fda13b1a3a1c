"""CIFAR-10 and CIFAR-100 from their binary versions, on small files written in that very
format (no copy of the real data is here): the layout read back pixel for pixel, from the
unpacked folder and from the archive; damaged files and archives refused in one line."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile

import numpy as np
import pytest
import torch

from stabgap.core.data import DATASETS
from stabgap.errors import StabgapError

PER_FILE = 10  # records in each fixture file: every class in each


def record_file(labels: list[list[int]], seed: int) -> tuple[bytes, np.ndarray]:
    """Records of `labels` (each record's label bytes) and random pixels; the pixels."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    rows = [bytes(label) + row.tobytes() for label, row in zip(labels, pixels, strict=True)]
    return b"".join(rows), pixels


@pytest.fixture
def small(monkeypatch):
    """Both datasets shrunk to PER_FILE records a file, so that fixtures can be written."""
    c10, c100 = DATASETS["cifar10"], DATASETS["cifar100"]
    monkeypatch.setattr(c10, "train_size", 5 * PER_FILE)
    monkeypatch.setattr(c10, "test_size", PER_FILE)
    monkeypatch.setattr(c100, "train_size", PER_FILE)
    monkeypatch.setattr(c100, "test_size", PER_FILE)
    return c10, c100


def write_cifar10(root, labels_of=lambda i: i % 10):
    """The unpacked CIFAR-10 folder; each file's (labels, pixels)."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    written = {}
    for k, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        labels = [labels_of(k * PER_FILE + j) for j in range(PER_FILE)]
        payload, pixels = record_file([[y] for y in labels], seed=k)
        (folder / name).write_bytes(payload)
        written[name] = (labels, pixels)
    return written


def test_cifar10_records_are_read_as_red_green_blue_planes(tmp_path, small):
    c10, _ = small
    written = write_cifar10(tmp_path)
    images = c10.load(tmp_path)
    assert images.train_images.shape == (50, 3, 32, 32) and images.input_shape == (3, 32, 32)
    assert images.train_labels.tolist() == sum((written[f"data_batch_{i}.bin"][0]
                                                for i in range(1, 6)), [])  # fmt: skip
    labels, pixels = written["test_batch.bin"]
    assert images.test_labels.tolist() == labels
    # record 2's byte 1 + 32·5 + 7 (after its label) is red at row 5, column 7; byte
    # 1 + 1024 + 32·5 + 7 is green there
    assert images.test_images[2, 0, 5, 7] == pixels[2, 32 * 5 + 7]
    assert images.test_images[2, 1, 5, 7] == pixels[2, 1024 + 32 * 5 + 7]
    assert images.test_images[2, 2, 31, 31] == pixels[2, 3071]


def test_cifar100_takes_the_fine_label_after_the_coarse_one(tmp_path, small):
    _, c100 = small
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    for name, seed in (("train.bin", 0), ("test.bin", 1)):
        payload, _ = record_file([[j % 20, 90 + j] for j in range(PER_FILE)], seed)
        (folder / name).write_bytes(payload)
    images = c100.load(tmp_path)
    assert images.train_labels.tolist() == list(range(90, 100))
    assert images.n_classes == 100


def test_the_archive_is_read_without_unpacking_once_its_md5_matches(tmp_path, small, monkeypatch):
    c10, _ = small
    write_cifar10(tmp_path / "unpacked")
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "unpacked" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    monkeypatch.setattr(c10, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    from_archive = c10.load(tmp_path)
    from_folder = c10.load(tmp_path / "unpacked")
    assert torch.equal(from_archive.train_images, from_folder.train_images)
    assert not (tmp_path / "cifar-10-batches-bin").exists()  # nothing extracted
    verified = [("cifar-10-binary.tar.gz", True, f"{archive}: ok, MD5 as published")]
    assert c10.verify(tmp_path) == verified
    monkeypatch.setattr(c10, "archive_md5", "0" * 32)
    with pytest.raises(StabgapError, match=r"damaged CIFAR-10 archive .*MD5 .*, expected 0{32}"):
        c10.read(tmp_path)


def test_damaged_files_are_refused_in_one_line(tmp_path, small):
    c10, _ = small
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-100])  # a truncated download
    with pytest.raises(StabgapError) as e:
        c10.read(tmp_path)
    assert str(e.value).startswith(f"damaged CIFAR-10 file {batch}: 30630 bytes")
    assert "\n" not in str(e.value)
    assert [ok for _, ok, _ in c10.verify(tmp_path)] == [True, True, False, True, True, True]
    other = tmp_path / "labels"
    write_cifar10(other, labels_of=lambda i: 10 if i == 7 else 0)
    with pytest.raises(StabgapError, match="a label of 10, but it has 10 classes"):
        c10.read(other)


def test_a_run_refused_a_damaged_file_gets_the_error_alone(tmp_path, small, capsys):
    # No note that the files were checked for size and labels before the error that a
    # label is wrong: the note follows a read that succeeded.
    c10, _ = small
    write_cifar10(tmp_path, labels_of=lambda i: 10 if i == 7 else 0)
    with pytest.raises(StabgapError, match="a label of 10"):
        c10.load(tmp_path)
    assert capsys.readouterr().err == ""


def cifar10_served(tmp_path, monkeypatch, c10, seed_shift=0):
    """A fixture archive of CIFAR-10's layout, published: its MD5 is the expected one and the
    download fetches it from a file:// URL (no network). Its folder's files (seeded
    `seed_shift` on: another value gives other pixels)."""
    source = tmp_path / "published"
    folder = source / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for k, name in enumerate(c10.payload_names()):
        payload, _ = record_file([[j % 10] for j in range(PER_FILE)], seed=k + seed_shift)
        (folder / name).write_bytes(payload)
    archive = source / c10.archive
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-bin")
    monkeypatch.setattr(c10, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(c10, "url", archive.as_uri())
    return folder


def unpacked_copy(folder, root):
    """`folder`'s files unpacked by hand into `root` (no record of their checksums)."""
    (root / folder.name).mkdir(parents=True)
    for f in folder.iterdir():
        (root / folder.name / f.name).write_bytes(f.read_bytes())
    return root / folder.name


def test_download_refuses_a_damaged_unpacked_folder_and_never_says_verified(
    tmp_path, small, monkeypatch, capsys
):
    """The unpacked files are the user's: download names the damaged one and the way out
    (for this folder) and leaves everything as it was; it fetches nothing."""
    from stabgap.cli import main

    c10, _ = small
    monkeypatch.setattr(c10, "url", (tmp_path / "nowhere.tar.gz").as_uri())
    root = tmp_path / "data"
    write_cifar10(root)
    batch = root / "cifar-10-batches-bin" / "data_batch_1.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    before = {f: f.read_bytes() for f in root.rglob("*") if f.is_file()}
    with pytest.raises(StabgapError) as e:
        c10.download(root)
    message = str(e.value)
    assert message.startswith(f"damaged CIFAR-10 file {batch}: 30630 bytes") and "\n" not in message
    assert (
        f"delete that folder and run `stabgap data download --dataset cifar10 --data-dir {root}`"
        in message
    )
    assert main(["data", "download", "--dataset", "cifar10", "--data-dir", str(root)]) == 2
    out, err = capsys.readouterr()
    assert "verified" not in out and str(batch) in err
    assert {f: f.read_bytes() for f in root.rglob("*") if f.is_file()} == before
    # verify: the damaged file, and the same fix for this folder
    assert main(["data", "verify", "--dataset", "cifar10", "--data-dir", str(root)]) == 1
    out, err = capsys.readouterr()
    assert f"BAD data_batch_1.bin: {batch}: 30630 bytes" in out
    assert f"--data-dir {root}`" in err and "delete that folder" in err


def test_every_damaged_unpacked_file_is_named_in_the_one_line(tmp_path, small, monkeypatch):
    """A copy damaged in two files: read and download name both, so that one repair mends
    them (before, download named the first alone and the second surfaced after the fix)."""
    c10, _ = small
    monkeypatch.setattr(c10, "url", (tmp_path / "nowhere.tar.gz").as_uri())
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-bin"
    for name in ("data_batch_2.bin", "test_batch.bin"):
        (folder / name).write_bytes((folder / name).read_bytes()[:-1])
    for refuse in (c10.read, c10.download):
        with pytest.raises(StabgapError) as e:
            refuse(tmp_path)
        message = str(e.value)
        assert message.startswith(
            f"2 CIFAR-10 files in {folder} refused: data_batch_2.bin: 30729 bytes"
        )
        assert "; test_batch.bin: 30729 bytes" in message and "\n" not in message
        assert "delete that folder and run" in message


def test_damage_messages_name_the_folder_and_the_download_into_it(tmp_path, small, monkeypatch):
    c10, _ = small
    monkeypatch.delenv("STABGAP_CIFAR10", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    batch.write_bytes(batch.read_bytes()[:-1])
    with pytest.raises(StabgapError, match=re.escape(f"--data-dir {tmp_path}`")) as e:
        c10.read(tmp_path)
    assert str(tmp_path / "cifar-10-batches-bin") in str(e.value)
    archive = tmp_path / "packed" / c10.archive
    archive.parent.mkdir()
    archive.write_bytes(b"not gzip")
    with pytest.raises(StabgapError) as e:
        c10.read(archive.parent)
    assert str(e.value).startswith(f"damaged CIFAR-10 archive {archive}: MD5 ")
    assert f"`stabgap data download --dataset cifar10 --data-dir {archive.parent}`" in str(e.value)
    # in the folder the plain command fills, the plain command is the fix
    monkeypatch.setenv("STABGAP_CIFAR10", str(archive.parent))
    with pytest.raises(StabgapError, match=r"run `stabgap data download --dataset cifar10`, "):
        c10.read(archive.parent)


def test_download_checksums_an_unpacked_folder_against_the_archive_and_verify_checks_it(
    tmp_path, small, monkeypatch, capsys
):
    """A folder unpacked by hand is checked for size and labels only, and says so, until a
    download compares its files with the verified archive and records their SHA-256; then
    verify checks them against that record, and a changed byte is found."""
    from stabgap.cli import main
    from stabgap.core.data.cifar import MANIFEST

    c10, _ = small
    root = tmp_path / "data"
    unpacked = unpacked_copy(cifar10_served(tmp_path, monkeypatch, c10), root)
    results = c10.verify(root)
    assert all(
        ok and msg.endswith(": size and labels ok, not checksummed") for _, ok, msg in results
    )
    assert main(["data", "verify", "--dataset", "cifar10", "--data-dir", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "not checksummed" in out and "size and labels only" in err
    assert f"`stabgap data download --dataset cifar10 --data-dir {root}`" in err
    c10.load(root)  # a run reading it says so once it has read it
    c10.load(root)
    assert capsys.readouterr().err.count("size and labels only") == 1

    assert main(["data", "download", "--dataset", "cifar10", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out == (f"CIFAR-10 in {root}: wrote {c10.archive}, cifar-10-batches-bin/{MANIFEST}; "
                   "all verified\n")  # fmt: skip
    assert all(
        msg.endswith(f"ok, SHA-256 as recorded in {MANIFEST}") for _, _, msg in c10.verify(root)
    )
    assert c10.unverified(root) is None
    (root / c10.archive).unlink()  # the record stands without the archive
    assert c10.download(root) == [] and all(ok for _, ok, _ in c10.verify(root))
    # checked against the record only, which says no more than that
    assert main(["data", "download", "--dataset", "cifar10", "--data-dir", str(root)]) == 0
    assert capsys.readouterr().out == (
        f"CIFAR-10 in {root}: nothing to download; the files match the SHA-256 recorded in "
        f"{MANIFEST}\n"
    )

    batch = unpacked / "data_batch_2.bin"
    payload = bytearray(batch.read_bytes())
    payload[100] ^= 1  # a pixel: size and labels as they were
    batch.write_bytes(bytes(payload))
    report = {name: (ok, msg) for name, ok, msg in c10.verify(root)}
    assert report["data_batch_2.bin"][0] is False and "not the " in report["data_batch_2.bin"][1]
    assert sum(ok for ok, _ in report.values()) == 5
    with pytest.raises(StabgapError, match=re.escape(f"CIFAR-10 file {batch}: SHA-256 ")):
        c10.download(root)
    assert not (root / c10.archive).exists()  # nothing fetched for a folder it will not fix


def test_download_refuses_unpacked_files_that_differ_from_the_verified_archive(
    tmp_path, small, monkeypatch
):
    """Files of the right size and labels but other content (not CIFAR's): the archive is
    fetched and kept, the files named and left, and no checksum recorded."""
    from stabgap.core.data.cifar import MANIFEST

    c10, _ = small
    cifar10_served(tmp_path, monkeypatch, c10, seed_shift=1)
    root = tmp_path / "data"
    write_cifar10(root)  # the same layout and labels, other pixels
    with pytest.raises(StabgapError) as e:
        c10.download(root)
    message = str(e.value)
    assert f"CIFAR-10 in {root}: data_batch_1.bin, data_batch_2.bin, " in message
    assert "differ from the same files in the verified archive" in message
    assert f"--data-dir {root}`" in message and "\n" not in message
    assert (root / c10.archive).is_file() and not (
        root / "cifar-10-batches-bin" / MANIFEST
    ).exists()
    assert all(ok for _, ok, _ in c10.verify(root))  # size and labels, said to be only that
    assert c10.read(root).train_images.shape == (50, 3, 32, 32)  # a run still reads them


def test_an_absent_dataset_says_where_it_looked_and_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.delenv("STABGAP_CIFAR10", raising=False)
    with pytest.raises(StabgapError) as e:
        DATASETS["cifar10"].find(tmp_path)
    message = str(e.value)
    assert message.startswith(f"CIFAR-10 not found in {tmp_path} (given data dir)")
    assert "cifar-10-binary.tar.gz" in message and "cifar-10-batches-bin/" in message
    assert f"stabgap data download --dataset cifar10 --data-dir {tmp_path}" in message


def test_a_split_cifar_run_trains_on_the_format_fixture(tmp_path, small):
    """The tiny scale of a CIFAR study: split CIFAR-10 (colour images, 3 channels) with the
    CNN and with a bounded memory, through the loop."""
    from stabgap.core.config import RunConfig
    from stabgap.core.train import run_experiment

    write_cifar10(tmp_path)
    config = RunConfig(dataset="cifar10", stream="split", model="cnn", channels=(4,),
                       hidden=(8,), replay="memory", memory_size=8, batches_per_task=3,
                       batch_size=2, eval_subset=1, data_dir=str(tmp_path))  # fmt: skip
    result = run_experiment(config)
    assert result.acc.shape == (15, 5) and not result.diverged
    assert result.metadata["task_names"][0] == "classes 0-1"
    rotated = RunConfig(dataset="cifar10", hidden=(8,), batches_per_task=2, batch_size=2,
                        eval_subset=2, data_dir=str(tmp_path))  # fmt: skip
    assert run_experiment(rotated).acc.shape == (6, 3)


@pytest.mark.parametrize("preset", ["cifar10-split", "cifar100-split"])
def test_the_cifar_presets_run_every_experiment_at_tiny_scale_on_the_format_fixture(
    preset, tmp_path, small, monkeypatch
):
    """The literature's protocols, shrunk to a few batches of the fixture's images: every
    experiment runs through the study driver with its bounded memory and is recorded."""
    from stabgap.study import run_study

    if preset == "cifar10-split":
        write_cifar10(tmp_path)
    else:  # one image of each of the 100 classes in each file: 10 a task
        _, c100 = small
        monkeypatch.setattr(c100, "train_size", 100)
        monkeypatch.setattr(c100, "test_size", 100)
        folder = tmp_path / "cifar-100-binary"
        folder.mkdir()
        for name, seed in (("train.bin", 0), ("test.bin", 1)):
            payload, _ = record_file([[j // 5, j] for j in range(100)], seed)
            (folder / name).write_bytes(payload)
    tiny = {"resnet_width": 4, "batches_per_task": 2, "batch_size": 2, "eval_subset": 2,
            "data_dir": str(tmp_path)}  # fmt: skip
    records = run_study(preset, ["all"], seeds=[1], overrides=tiny, out=tmp_path / "study",
                        plot=False)  # fmt: skip
    names = {
        r.config["decay_lambda"] > 0 or r.config["er_ace"] or r.config["replay"] for r in records
    }
    assert len(records) == 4 and names == {True, "memory", "none"}
    er = next(r for r in records if r.name.startswith("er_") or r.name == "er")
    tasks = 5 if preset == "cifar10-split" else 10
    assert er.acc.shape == (2 * tasks, tasks) and not er.diverged
    assert er.metadata["memory"]  # the memory's content at each switch is recorded


@pytest.mark.parametrize("model", ["resnet", "vit"])
def test_a_cifar_runs_counted_cost_is_what_torchs_flop_counter_counts(tmp_path, small, model):
    """`stabgap cost` and the report count a CIFAR run on CIFAR's images (3 × 32 × 32) and
    test sets, with its memory's replayed examples: the whole run's products, against torch's
    FLOP counter on the real loop."""
    from torch.utils.flop_counter import FlopCounterMode

    from stabgap.core.config import RunConfig
    from stabgap.core.train import run_experiment
    from stabgap.cost.flops import run_cost, total

    write_cifar10(tmp_path)
    network = {"resnet_width": 4} if model == "resnet" else {"vit_dim": 16, "vit_depth": 1}
    # The class-balanced memory chooses at each task's end, so every step of tasks 2-5
    # replays a full replay batch (a reservoir fills during task 1's first steps, which the
    # cost model leaves out).
    config = RunConfig(dataset="cifar10", stream="split", model=model, replay="memory",
                       memory="class-balanced", memory_size=8, batches_per_task=2,
                       batch_size=2, eval_subset=1, data_dir=str(tmp_path), **network)  # fmt: skip
    with FlopCounterMode(display=False) as counter:
        run_experiment(config)
    assert counter.get_total_flops() == total(run_cost(config)).matmul_flops


def write_record(root, c10, sums=None, archive_md5=None):
    """A stabgap-checksums.json written by hand into `root`'s unpacked folder: of the files
    there (or `sums`), for the archive of the published MD5 (or `archive_md5`)."""
    from stabgap.core.data.cifar import MANIFEST

    folder = root / "cifar-10-batches-bin"
    if sums is None:
        sums = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()
                for f in c10.payload_names()}  # fmt: skip
    record = {"archive_md5": archive_md5 or c10.archive_md5, "sha256": sums}
    (folder / MANIFEST).write_text(json.dumps(record))
    return folder / MANIFEST


def test_a_record_is_said_to_be_only_a_record(tmp_path, small, capsys):
    """A hand-written record of random files' SHA-256: nothing can tell it from download's, so
    verify and download say the files match the record, never that they are CIFAR's."""
    from stabgap.cli import main
    from stabgap.core.data.cifar import MANIFEST

    c10, _ = small
    write_cifar10(tmp_path)  # random pixels: not CIFAR's files
    write_record(tmp_path, c10)
    args = ["data", "verify", "--dataset", "cifar10", "--data-dir", str(tmp_path)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.count(f": ok, SHA-256 as recorded in {MANIFEST}\n") == 6 and err == ""
    assert "archive" not in out and "verified" not in out
    assert main(["data", "download", *args[2:]]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"nothing to download; the files match the SHA-256 recorded in {MANIFEST}\n"
    )
    assert "verified" not in out


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "could not be read"),
        ('{"archive_md5": "x"}', "could not be read"),
        ("other", "is for another archive"),
    ],
)
def test_an_unusable_record_is_said_to_be_ignored_and_download_replaces_it(
    tmp_path, small, monkeypatch, capsys, content, why
):
    from stabgap.cli import main
    from stabgap.core.data.cifar import MANIFEST

    c10, _ = small
    root = tmp_path / "data"
    unpacked = unpacked_copy(cifar10_served(tmp_path, monkeypatch, c10), root)
    if content == "other":  # well-formed, of the right files, for another archive
        record = write_record(root, c10, archive_md5="0" * 32)
    else:
        record = unpacked / MANIFEST
        record.write_text(content)
    args = ["data", "verify", "--dataset", "cifar10", "--data-dir", str(root)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.count("size and labels ok, not checksummed") == 6
    assert f"the existing cifar-10-batches-bin/{MANIFEST} {why}, so it was ignored; " in err
    assert "writes a new one in its place" in err and "records their SHA-256" not in err
    assert main(["data", "download", *args[2:]]) == 0  # stabgap's own file: replaced, saying so
    out, err = capsys.readouterr()
    assert out.endswith(f"cifar-10-batches-bin/{MANIFEST}; all verified\n")
    assert err == f"stabgap: note: cifar-10-batches-bin/{MANIFEST} {why}, so it was replaced\n"
    assert json.loads(record.read_text())["archive_md5"] == c10.archive_md5
    assert all(msg.endswith("ok, SHA-256 as recorded in " + MANIFEST)
               for _, _, msg in c10.verify(root))  # fmt: skip


def test_a_file_unlike_its_record_blames_neither_and_offers_a_fresh_comparison(
    tmp_path, small, monkeypatch, capsys
):
    """The record changed, not the file: following the advice (delete the record, download)
    compares the intact files with the archive again and records them afresh."""
    from stabgap.cli import main
    from stabgap.core.data.cifar import MANIFEST

    c10, _ = small
    root = tmp_path / "data"
    unpacked = unpacked_copy(cifar10_served(tmp_path, monkeypatch, c10), root)
    c10.download(root)
    record = unpacked / MANIFEST
    sums = json.loads(record.read_text())["sha256"]
    write_record(root, c10, sums={**sums, "test_batch.bin": "0" * 64})
    batch = unpacked / "test_batch.bin"
    args = ["data", "verify", "--dataset", "cifar10", "--data-dir", str(root)]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert f"BAD test_batch.bin: {batch}: SHA-256 " in out
    assert (
        f"not the {'0' * 64} recorded in {MANIFEST}: the file or the record has changed since"
        in out
    )
    fix = (f"if the files are intact, delete {record} and run `stabgap data download --dataset "
           f"cifar10 --data-dir {root}`, which compares them with the archive again; else put "
           "intact copies")  # fmt: skip
    assert fix in err and err.count("\n") == 1
    with pytest.raises(StabgapError) as e:
        c10.download(root)
    assert str(e.value).startswith(f"CIFAR-10 file {batch}: SHA-256 ") and fix in str(e.value)
    assert "damaged" not in str(e.value).split(";")[0]
    record.unlink()  # the advice, followed
    (root / c10.archive).unlink()
    assert c10.download(root) == [root / c10.archive, record]
    assert main(args) == 0


def test_the_unpacked_folder_itself_is_refused_before_any_download(
    tmp_path, small, monkeypatch, capsys
):
    """Given the unpacked folder where the folder holding it is meant, every way in names
    the folder to give instead; nothing is written among the user's files."""
    from stabgap.cli import main

    c10, c100 = small
    cifar10_served(tmp_path, monkeypatch, c10)  # a download would succeed
    write_cifar10(tmp_path / "c10")
    inner = tmp_path / "c10" / "cifar-10-batches-bin"
    before = sorted(inner.iterdir())
    said = (f"CIFAR-10 folder {inner} (given data dir) is the unpacked folder "
            f"cifar-10-batches-bin/ itself: point --data-dir at the folder that holds it, "
            f"{tmp_path / 'c10'}")  # fmt: skip
    for action in ("verify", "download"):
        assert main(["data", action, "--dataset", "cifar10", "--data-dir", str(inner)]) == 2
        err = capsys.readouterr().err
        assert err.endswith(f": {said}\n") and err.count("\n") == 1
    with pytest.raises(StabgapError, match=re.escape(said)):
        c10.find(inner)
    monkeypatch.chdir(inner)  # "." is named by where it is
    with pytest.raises(StabgapError, match=re.escape(f"holds it, {inner.parent.resolve()}")):
        c10.find(".")
    monkeypatch.setenv("STABGAP_CIFAR10", str(inner))  # a run may download into its folder
    with pytest.raises(StabgapError) as e:
        c10.load(None, download=True)
    assert f"{inner} (from $STABGAP_CIFAR10) is the unpacked" in str(e.value)
    assert str(e.value).endswith(
        f"point $STABGAP_CIFAR10 at the folder that holds it, {inner.parent}"
    )
    assert main(["data", "download", "--dataset", "cifar10"]) == 2
    assert "point $STABGAP_CIFAR10 at" in capsys.readouterr().err
    assert sorted(inner.iterdir()) == before  # no archive fetched into it
    # CIFAR-100's files, in a folder of another name
    other = tmp_path / "mine"
    other.mkdir()
    for name in ("train.bin", "test.bin"):
        (other / name).write_bytes(record_file([[0, 1]] * PER_FILE, seed=0)[0])
    with pytest.raises(StabgapError) as e:
        c100.verify(other)
    assert str(e.value) == (
        f"CIFAR-100 folder {other} (given data dir) holds train.bin, test.bin itself, where "
        f"they are read from its subfolder cifar-100-binary/: move them into "
        f"{other / 'cifar-100-binary'}"
    )


def test_a_partly_unpacked_folder_names_the_missing_files(tmp_path, small, capsys, monkeypatch):
    from stabgap.cli import main

    c10, _ = small
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-bin"
    for name in ("data_batch_3.bin", "test_batch.bin"):
        (folder / name).unlink()
    report = {name: (ok, msg) for name, ok, msg in c10.verify(tmp_path)}
    assert report["data_batch_3.bin"] == (False, f"{folder / 'data_batch_3.bin'}: missing")
    assert report["test_batch.bin"] == (False, f"{folder / 'test_batch.bin'}: missing")
    assert sum(ok for ok, _ in report.values()) == 4
    fix = (f"put the files it lacks (data_batch_3.bin, test_batch.bin) in {folder}, or run "
           f"`stabgap data download --dataset cifar10 --data-dir {tmp_path}` to fetch the "
           "archive, which a run reads instead while that folder lacks files")  # fmt: skip
    assert main(["data", "verify", "--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert (
        "neither" not in out
        and err == f"stabgap: CIFAR-10 in {tmp_path} is damaged or incomplete: {fix}\n"
    )
    with pytest.raises(StabgapError) as e:
        c10.find(tmp_path)
    assert str(e.value) == (
        f"CIFAR-10 in {tmp_path} (given data dir): cifar-10-batches-bin/ lacks data_batch_3.bin, "
        f"test_batch.bin; {fix}"
    )
    # a run, which may download into the variable's folder, leaves the user's half to them
    monkeypatch.setattr(c10, "url", (tmp_path / "nowhere.tar.gz").as_uri())
    monkeypatch.setenv("STABGAP_CIFAR10", str(tmp_path))
    with pytest.raises(
        StabgapError, match=r"\(from \$STABGAP_CIFAR10\): cifar-10-batches-bin/ lacks"
    ):
        c10.load(None, download=True)


def test_verify_without_a_data_dir_names_the_default_folder_not_a_path_to_check(
    tmp_path, monkeypatch, capsys
):
    from stabgap.cli import main

    monkeypatch.delenv("STABGAP_CIFAR10", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["data", "verify", "--dataset", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(
        f": CIFAR-10 is not in its default folder {tmp_path / 'cache/stabgap/cifar-10'}, "
        "which does not exist: fetch it with `stabgap data download --dataset cifar10`, or give "
        "its folder with --data-dir\n"
    )
    assert "check the path" not in err


def test_a_mistyped_folder_is_said_not_to_exist_and_a_file_to_be_one(tmp_path, small):
    # as for MNIST: advice to put the archive into a folder that is not there would mislead
    c10, _ = small
    absent = tmp_path / "cifra"
    with pytest.raises(StabgapError) as e:
        c10.find(absent)
    assert str(e.value) == (
        f"CIFAR-10 folder {absent} (given data dir) does not exist: check the path, or fetch "
        f"CIFAR-10 there with `stabgap data download --dataset cifar10 --data-dir {absent}`"
    )
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    with pytest.raises(StabgapError, match="is a file: give the folder of CIFAR-10"):
        c10.find(a_file)
    assert not absent.exists() and a_file.read_text() == ""


def test_verify_of_a_folder_without_any_of_it_says_so(tmp_path, small, capsys):
    # not "damaged or incomplete": there is nothing of it to damage
    from stabgap.cli import main

    assert main(["data", "verify", "--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"stabgap: no CIFAR-10 in {tmp_path}: run `")
    (tmp_path / "cifar-10-batches-bin").mkdir()  # unpacked into, then emptied
    assert main(["data", "verify", "--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"stabgap: no CIFAR-10 in {tmp_path}: put its files in {tmp_path / 'cifar-10-batches-bin'}"
        f", or run `stabgap data download --dataset cifar10 --data-dir {tmp_path}` to fetch the "
        "archive, which a run reads instead while that folder lacks files\n"
    )
    assert main(["data", "verify", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"stabgap: no MNIST in {tmp_path}: run `")
