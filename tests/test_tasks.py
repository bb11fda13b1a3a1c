import numpy as np
import pytest
import torch
from conftest import reference_dir, tiny_config

from stabgap.core.streams import build_stream
from stabgap.core.streams.rotated import rotate
from stabgap.errors import StabgapError


@pytest.mark.parametrize(
    "key,degrees",
    [
        ("rot_0", 0),
        ("rot_80", 80),
        ("rot_160", 160),
        ("rot_45", 45),
        ("rot_90", 90),
        ("rot_m30", -30),
    ],
)
def test_rotation_matches_torchvision_fixture_pixel_for_pixel(key, degrees):
    fixture = np.load(reference_dir() / "rotation-fixture.npz")
    images = torch.from_numpy(fixture["images"])
    np.testing.assert_array_equal(rotate(images, degrees).numpy(), fixture[key])


def test_rotation_of_float_images_keeps_pixel_values():
    images = torch.rand(4, 28, 28)
    out = rotate(images, 80)
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0.0}


def test_stream_layout(small_mnist):
    stream = build_stream(tiny_config(rotations=[0, 80, 160]), "cpu", small_mnist)
    n, m = len(small_mnist.train_labels), len(small_mnist.test_labels)
    assert stream.train_offsets == (0, n, 2 * n, 3 * n)
    assert stream.test_offsets == (0, m, 2 * m, 3 * m)
    assert stream.train_x.shape == (3 * n, 784) and stream.train_x.dtype == torch.uint8
    # Task 1 is the unrotated data; task 2 is the same digits rotated, same labels.
    assert torch.equal(stream.train_x[:n], small_mnist.train_images.flatten(1))
    assert torch.equal(stream.train_x[n : 2 * n], rotate(small_mnist.train_images, 80).flatten(1))
    assert torch.equal(stream.train_y[n : 2 * n], small_mnist.train_labels)
    assert stream.names == ("0°", "80°", "160°")


def test_eval_subset_larger_than_test_set_is_refused(small_mnist):
    with pytest.raises(StabgapError, match="eval_subset=5000 is larger than task 1's test set"):
        build_stream(tiny_config(eval_subset=5000), "cpu", small_mnist)


def test_batch_larger_than_task_is_refused_without_replay(small_mnist):
    with pytest.raises(StabgapError, match="larger than task 1's training set"):
        build_stream(tiny_config(batch_size=4000, replay="none"), "cpu", small_mnist)


def test_a_replay_batch_larger_than_the_tasks_seen_is_refused(small_mnist):
    """Full replay draws from tasks 1..k: a batch larger than that would silently shrink."""
    build_stream(tiny_config(batch_size=3000), "cpu", small_mnist)  # 3000·k of 3000·k: fits
    with pytest.raises(StabgapError, match="batch size 3100 in task 1 is larger than task 1's"):
        build_stream(tiny_config(batch_size=3100), "cpu", small_mnist)
