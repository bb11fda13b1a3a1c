"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 28×28 grey images of ten kinds of clothing,
in MNIST's four IDX files and sizes.

Its folder: the run's ``data_dir``, else ``$STABGAP_FASHION_MNIST``, else the folder Debian's
package ``dataset-fashion-mnist`` installs (``/usr/share/datasets/fashion-mnist``), else the
user cache (``~/.cache/stabgap/fashion-mnist``), which a download fills (checksummed).
"""

from __future__ import annotations

from collections.abc import Sequence

from stabgap.core.data import DATASETS
from stabgap.core.data.idx import IdxDataset, IdxFile


@DATASETS.register
class FashionMnist(IdxDataset):
    """Fashion-MNIST, from its four IDX files."""

    name = "fashion-mnist"
    title = "Fashion-MNIST"
    help = "28×28 grey clothing (10 kinds), 60,000 for training and 10,000 for testing"
    input_shape = (1, 28, 28)
    n_classes = 10
    train_size, test_size = 60_000, 10_000
    env = "STABGAP_FASHION_MNIST"
    cache_name = "fashion-mnist"
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    files = (
        IdxFile(
            "train-images-idx3-ubyte",
            47040016,
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            (60000, 28, 28),
        ),
        IdxFile(
            "train-labels-idx1-ubyte",
            60008,
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            (60000,),
        ),
        IdxFile(
            "t10k-images-idx3-ubyte",
            7840016,
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            (10000, 28, 28),
        ),
        IdxFile(
            "t10k-labels-idx1-ubyte",
            10008,
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            (10000,),
        ),
    )

    @classmethod
    def mirrors(cls) -> Sequence[str]:
        # The authors' own bucket, which their repository's links point to.
        return ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
