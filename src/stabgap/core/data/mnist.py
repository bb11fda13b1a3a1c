"""MNIST: the four standard IDX files (LeCun et al. 1998), found, read, downloaded, verified.

Its folder: the run's ``data_dir``, else ``$STABGAP_DATA``, else the user cache
(``~/.cache/stabgap/mnist``), which a download fills. The machinery is
:mod:`stabgap.core.data.idx`'s; the functions here keep their names for scripts that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from stabgap.core.data import DATASETS, Images, cache_root
from stabgap.core.data.idx import IdxDataset, IdxFile

N_CLASSES = 10
DATA_ENV = "STABGAP_DATA"
"""Environment variable naming the MNIST directory (used when no dir is passed)."""

MnistFile = IdxFile  # its name before Fashion-MNIST shared the format

MNIST_FILES: tuple[IdxFile, ...] = (
    IdxFile(
        "train-images-idx3-ubyte",
        47040016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, 28, 28),
    ),
    IdxFile(
        "train-labels-idx1-ubyte",
        60008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    IdxFile(
        "t10k-images-idx3-ubyte",
        7840016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, 28, 28),
    ),
    IdxFile(
        "t10k-labels-idx1-ubyte",
        10008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
)

MIRRORS: tuple[str, ...] = (
    # The bucket torchvision downloads from; yann.lecun.com itself often refuses scripts.
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


@DATASETS.register
class Mnist(IdxDataset):
    """MNIST, from its four IDX files."""

    name = "mnist"
    title = "MNIST"
    help = "28×28 grey digits, 60,000 for training and 10,000 for testing"
    input_shape = (1, 28, 28)
    n_classes = N_CLASSES
    classes_are = "digits"
    train_size, test_size = 60_000, 10_000
    train_per_class = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
    test_per_class = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
    files = MNIST_FILES
    env = DATA_ENV
    cache_name = "mnist"

    @classmethod
    def mirrors(cls) -> Sequence[str]:
        return MIRRORS  # read at call time, so that it can be replaced (tests do)

    @classmethod
    def fetch_command(cls) -> str:
        return "stabgap data download"  # MNIST is the default dataset


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/stabgap/mnist``, or ``~/.cache/stabgap/mnist`` when that variable
    is unset or not absolute (as the XDG spec requires)."""
    return cache_root() / Mnist.cache_name


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """``data_dir`` if given, else ``$STABGAP_DATA`` if set, else :func:`default_cache_dir`
    (``~`` expanded; the folder need not exist)."""
    return Mnist.resolve(data_dir)


def read_idx(path: str | Path) -> torch.Tensor:
    """An unsigned-byte IDX file (gzipped or raw) as a tensor; a one-line StabgapError
    where it is missing, unreadable, not valid gzip, of the wrong magic number or length."""
    return Mnist.read_idx(path)


def load_mnist(data_dir: str | Path | None = None, download: bool = False) -> Images:
    """MNIST, parsed and checksum-verified, missing files downloaded first when `download`
    (cached per folder for the life of the process: clone before editing the tensors)."""
    return Mnist.load(data_dir, download)


def check_mnist(data_dir: str | Path | None = None, download: bool = False) -> Path:
    """The MNIST folder to use, checked without reading the data (see IdxDataset.find)."""
    return Mnist.find(data_dir, download)


def verify_mnist(data_dir: str | Path | None = None) -> list[tuple[str, bool, str]]:
    """Each MNIST file's (name, intact, what is wrong or which file was checked)."""
    return Mnist.verify(data_dir)


def download_mnist(
    dest: str | Path, mirrors: Sequence[str] | None = None, timeout: float = 30
) -> list[Path]:
    """Download each missing or invalid MNIST file into ``dest`` (see IdxDataset.download)."""
    return Mnist.download(Path(dest), mirrors, timeout)
