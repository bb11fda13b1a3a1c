"""Datasets: labelled images a stream cuts into tasks, found, downloaded and verified.

A dataset is one module here registering a :class:`Dataset` in :data:`DATASETS`: how to
find its files (``data_dir``, else ``$STABGAP_DATA``, else a per-user cache), download and
verify them, and load them as :class:`Images`. A run names its dataset (``dataset =
"mnist"``) apart from its stream's kind (``stream = "rotated"``), so a stream works on any
dataset whose images it can handle.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from stabgap.core.registry import Extension, Registry
from stabgap.errors import StabgapError


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors with == is not a bool
class Images:
    """A loaded dataset. Shared by every caller (cached): clone before editing in place.

    Attributes:
        train_images: (N, H, W) grey or (N, C, H, W) colour uint8 images.
        train_labels: (N,) int64 class labels in 0..n_classes-1.
        test_images, test_labels: the same for the test set.
        n_classes: the number of classes.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One image's shape as a network takes it: (channels, height, width)."""
        shape = tuple(self.train_images.shape[1:])
        return (1, *shape) if len(shape) == 2 else shape


GIVEN = "given data dir"  # where a folder came from, when the user named it


def missing_folders(dest: Path) -> list[Path]:
    """`dest` and its parents that do not exist yet (what creating it will create)."""
    return [p for p in (dest, *dest.parents) if not p.exists()]


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created, where it left them empty."""
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/stabgap``, or ``~/.cache/stabgap`` when that variable is unset or
    not absolute (as the XDG spec requires)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "stabgap"


class Dataset(Extension):
    """A dataset's files and how to read them (class attributes and class methods)."""

    title: ClassVar[str] = ""  # its name in messages: "MNIST"
    input_shape: ClassVar[tuple[int, ...]] = ()  # (channels, height, width)
    n_classes: ClassVar[int] = 0
    classes_are: ClassVar[str] = "classes"  # what a task's name calls them: "digits 0-1"
    train_size: ClassVar[int] = 0  # images of the training set
    test_size: ClassVar[int] = 0
    # images of each class in each split, where they are not the split's size / n_classes
    # each (MNIST's)
    train_per_class: ClassVar[tuple[int, ...]] = ()
    test_per_class: ClassVar[tuple[int, ...]] = ()
    env: ClassVar[str] = ""  # the environment variable that names its folder
    cache_name: ClassVar[str] = ""  # its folder in the user cache
    system_dirs: ClassVar[tuple[str, ...]] = ()  # where system packages install it

    @classmethod
    def images_of(cls, classes: Sequence[int], train: bool) -> int:
        """How many training (or test) images the given classes have, known without
        reading the files."""
        size, per_class = (
            (cls.train_size, cls.train_per_class) if train else (cls.test_size, cls.test_per_class)
        )
        per_class = per_class or (size // cls.n_classes,) * cls.n_classes
        return sum(per_class[c] for c in classes)

    @classmethod
    def holds(cls, folder: Path) -> bool:
        """Whether `folder` holds the dataset's files (without reading them)."""
        return False

    @classmethod
    def where(cls, data_dir: str | Path | None) -> tuple[Path, str]:
        """The folder to use and where that choice came from (for messages): the run's
        `data_dir`, else the folder of its environment variable, else the first system
        folder that holds it, else its folder in the user cache."""
        if data_dir is not None and str(data_dir) != "":
            return Path(data_dir).expanduser(), GIVEN
        env = os.environ.get(cls.env, "")
        if env:
            return Path(env).expanduser(), cls.env_source()
        for folder in map(Path, cls.system_dirs):
            if cls.holds(folder):
                return folder, "installed by a system package"
        return cache_root() / cls.cache_name, "default cache dir"

    @classmethod
    def env_source(cls) -> str:
        """Where :meth:`where` says a folder came from when its environment variable set it."""
        return f"from ${cls.env}"

    @classmethod
    def load(cls, data_dir: str | Path | None, download: bool = False) -> Images:
        """The images, read (and cached) from `data_dir`; missing files downloaded first
        when `download` (into $STABGAP_DATA or the cache, never a folder the user named)."""
        raise NotImplementedError

    @classmethod
    def find(cls, data_dir: str | Path | None, download: bool = False) -> Path:
        """The folder the data would be read from, checked without reading it (cheap,
        before any work): a one-line error where the files are missing and will not be
        downloaded."""
        raise NotImplementedError

    @classmethod
    def resolve(cls, data_dir: str | Path | None) -> Path:
        """The folder `data_dir` means (see :meth:`where`)."""
        return cls.where(data_dir)[0]

    @classmethod
    def fetch_command(cls) -> str:
        """The command that downloads it into its default folder."""
        return f"stabgap data download --dataset {cls.name}"

    @classmethod
    def fetch_into(cls, root: str | Path) -> str:
        """The command that downloads (and verifies) it into `root`: with ``--data-dir``
        unless `root` is the folder the plain command fills, for a fix that fetches a copy
        elsewhere leaves the damaged folder as it was."""
        root = Path(root).expanduser()
        if root.resolve() == cls.resolve(None).resolve():
            return cls.fetch_command()
        return f"{cls.fetch_command()} --data-dir {shlex.quote(str(root))}"

    @classmethod
    def refuse_a_file(cls, root: Path, source: str) -> None:
        """Refuse in one line a `root` (from `source`) that is a file, not a folder."""
        if root.exists() and not root.is_dir():
            raise StabgapError(
                f"{cls.title} folder {root} ({source}) is a file: give the folder of {cls.title}"
            )

    @classmethod
    def refuse_absent(cls, root: Path, source: str) -> None:
        """Refuse in one line a `root` that does not exist: a mistyped path, most likely,
        where advice to put files there would mislead."""
        if not root.exists():
            raise StabgapError(
                f"{cls.title} folder {root} ({source}) does not exist: check the path, or fetch "
                f"{cls.title} there with `{cls.fetch_into(root)}`"
            )

    @classmethod
    def check_folder(cls, root: Path, source: str) -> None:
        """Refuse `root` (from `source`, see :meth:`where`) in one line where it is plainly
        not the folder meant, before anything is read or downloaded there; nothing by
        default."""

    @classmethod
    def download(cls, root: Path) -> list[Path]:
        """Download the missing files into `root`, verified; the files written."""
        raise NotImplementedError

    @classmethod
    def downloaded(cls, root: Path, written: list[Path]) -> str:
        """What :meth:`download` into `root`, having written `written`, can say: it returns
        only once every file a run reads there is verified (it raises otherwise), so "all
        verified" holds also where it wrote nothing."""
        names = ", ".join(os.path.relpath(p, root) for p in written)
        return f"{f'wrote {names}' if written else 'nothing to download'}; all verified"

    @classmethod
    def verify(cls, data_dir: str | Path | None) -> list[tuple[str, bool, str]]:
        """Each file's (name, intact, what is wrong or where it is)."""
        raise NotImplementedError

    @classmethod
    def unverified(cls, root: Path) -> str | None:
        """What of `root` a run reads with no checksum known, and how to have it checked (a
        note, not an error: such data is still read); None where everything is."""
        return None

    @classmethod
    def repair_advice(cls, root: Path) -> str:
        """How to repair `root` where :meth:`verify` found files damaged or missing."""
        return f"run `{cls.fetch_into(root)}`"


DATASETS: Registry[type[Dataset]] = Registry("dataset", __name__, selector="dataset")
