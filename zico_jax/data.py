"""Input batches for scoring: where the data lives, how images are loaded and normalised, how batches are cut.

ZiCo is computed from the gradients of N mini-batches of B real, labelled images (the paper uses N=2). This module
produces them as two arrays, both ready for the engine:

    xs: float32 (N, B, H, W, C), NHWC, normalised per channel with the NAS-Bench-201 constants;
    ys: int32   (N, B).

Sources:
  * "offline" - the 1,000 + 1,000 real CIFAR-10 images in `<data_dir>/cifar10_sample/cifar10_sample.npz`
    (the default; needs nothing but numpy).
  * "tfds"    - the full CIFAR-10 / CIFAR-100 / ImageNet16-120 through `tensorflow_datasets` (optional extra
    `zico-jax[tfds]`; the datasets must be prepared beforehand, nothing is downloaded here).
  * a user's own batches: `load_inputs_npz` / `batches_from_arrays` take fixed images (NCHW as PyTorch writes them,
    or NHWC) and cut them into contiguous mini-batches, so the same images can be fed to a PyTorch reference.

The data folder is found by `data_dir`: explicit argument > $ZICO_JAX_DATA > the tables and samples that ship with
zico-jax (`zico_jax/packaged_data`, each folder with its SOURCE.md), so a plain `pip install` needs nothing else.

Example:
    >>> x, y = load_images("cifar10", "train")               # (1000, 32, 32, 3) float32, (1000,) int32
    >>> xs, ys = make_batches(x, y, num_batches=2, batch_size=128, seed=0)
    >>> xs.shape, ys.shape
    ((2, 128, 32, 32, 3), (2, 128))
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib

import jax.image
import numpy as np

from zico_jax.errors import (
    DataNotFoundError,  # noqa: F401  (re-exported)
    InputError,
    UnknownNameError,
)

DATA_ENV = "ZICO_JAX_DATA"
# The compact tables and the CIFAR-10 sample, installed with the package (see its README.md and SOURCE.md files).
PACKAGED_DATA = pathlib.Path(__file__).resolve().parent / "packaged_data"

DATASETS = ("cifar10", "cifar100", "imagenet16_120")
SPLITS = ("train", "test")
SOURCES = ("offline", "tfds")

# Per-channel mean / std on the [0, 1] scale, as NAS-Bench-201 (and ZiCo's code, which reuses its loaders) define them.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (
        tuple(v / 255 for v in (125.3, 123.0, 113.9)),
        tuple(v / 255 for v in (63.0, 62.1, 66.7)),
    ),
    "cifar100": (
        tuple(v / 255 for v in (129.3, 124.1, 112.4)),
        tuple(v / 255 for v in (68.2, 65.4, 70.4)),
    ),
    "imagenet16_120": (
        tuple(v / 255 for v in (122.68, 116.66, 104.01)),
        tuple(v / 255 for v in (63.22, 61.26, 65.09)),
    ),
    # full-size ImageNet (training only, `zico_jax.train_data`): the torchvision statistics
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120, "imagenet2012": 1000}
IMAGE_SIZE = {"cifar10": 32, "cifar100": 32, "imagenet16_120": 16}  # as stored; imagenet2012 is cropped to the net

OFFLINE_FILE = pathlib.Path("cifar10_sample") / "cifar10_sample.npz"

# tfds names. ImageNet16-120 is the 16x16 down-sampled ImageNet restricted to its first 120 classes; tfds keeps the
# down-sampled release's class order (label = original label - 1), so "label < 120" is exactly NB201's subset, and
# NB201's ImageNet16-120 test images come from the down-sampled *validation* set.
_TFDS_NAMES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16_120": "imagenet_resized/16x16"}
_TFDS_SPLITS = {"imagenet16_120": {"train": "train", "test": "validation"}}
_IMAGENET16_CLASSES = 120


def data_dir(override: str | os.PathLike | None = None) -> pathlib.Path:
    """The data folder: `override` > $ZICO_JAX_DATA > the data that ships with zico-jax (`PACKAGED_DATA`).

    An explicit choice (argument or environment variable) that does not exist is an error rather than silently
    falling back to another folder, so a typo never scores on different data than intended.
    """
    if override is not None:
        explicit, origin = str(override), "the data_dir argument"
    else:
        explicit, origin = os.environ.get(DATA_ENV), f"${DATA_ENV}"
    if explicit:
        p = pathlib.Path(explicit).expanduser()
        if p.is_dir():
            return p
        raise DataNotFoundError(f"data folder {p} (from {origin}) does not exist; set config.data_dir or {DATA_ENV} "
                                "to an existing folder")
    if PACKAGED_DATA.is_dir():
        return PACKAGED_DATA
    raise DataNotFoundError(f"the data that ships with zico-jax is missing ({PACKAGED_DATA}): reinstall zico-jax, or "
                            f"set config.data_dir or {DATA_ENV} to a folder with the same layout")


def _check_choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise InputError(f"unknown {what} {value!r}; expected one of {', '.join(valid)}")


def normalize(x_uint8: np.ndarray, dataset: str) -> np.ndarray:
    """uint8 NHWC RGB images -> float32, scaled to [0, 1] then standardised per channel with NORMALIZATION[dataset]."""
    _check_choice("dataset", dataset, DATASETS)
    mean, std = (np.asarray(v, np.float32) for v in NORMALIZATION[dataset])
    return (np.asarray(x_uint8, np.float32) / 255.0 - mean) / std


def load_images(dataset: str = "cifar10", split: str = "train", source: str = "offline",
                data_dir: str | os.PathLike | None = None, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised images x (M, H, W, 3) float32 and labels y (M,) int32 of one dataset split, in stored order.

    For source="offline" `data_dir` is the zico-jax data folder (see `data_dir()`); for source="tfds" it is passed
    to tfds as its data_dir (None: tfds' default, ~/tensorflow_datasets or $TFDS_DATA_DIR). `limit` keeps the first
    `limit` images.
    """
    _check_choice("dataset", dataset, DATASETS)
    _check_choice("split", split, SPLITS)
    _check_choice("source", source, SOURCES)
    if limit is not None and limit < 1:
        raise InputError(f"limit must be a positive number of images, got {limit}")
    if source == "offline":
        x, y = _load_offline(dataset, split, data_dir)
    else:
        x, y = _load_tfds(dataset, split, data_dir, limit)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return normalize(x, dataset), np.asarray(y, np.int32)


def _load_offline(dataset: str, split: str, folder) -> tuple[np.ndarray, np.ndarray]:
    if dataset != "cifar10":
        raise InputError(f"dataset {dataset!r} has no offline sample (only cifar10 does); use source='tfds'")
    path = data_dir(folder) / OFFLINE_FILE
    if not path.is_file():
        raise DataNotFoundError(f"offline CIFAR-10 sample {path} not found; set config.data_dir or {DATA_ENV} to the "
                                "folder holding cifar10_sample/, or use source='tfds'")
    with np.load(path) as f:
        return f[f"x_{split}"], f[f"y_{split}"]


def _has_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def keep_tensorflow_off_accelerators(tf) -> None:
    """TensorFlow (tfds' input pipeline) sees no GPU, so it neither claims GPU memory nor competes with JAX for
    the accelerator: it only decodes on the host (as the flax examples and big_vision do). A no-op once TF has
    initialised its devices (it then raises RuntimeError, which is harmless here)."""
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # devices already initialised: nothing to change any more
        pass


def _load_tfds(dataset: str, split: str, folder, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    # tfds and tensorflow are optional and heavy: import them only when asked for. tfds imports without tensorflow
    # but needs it to decode the prepared tfrecords, so check for it up front for a clear message.
    hint = "install them with: pip install 'zico-jax[tfds]'"
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(f"source='tfds' needs tensorflow_datasets and tensorflow; {hint}") from e
    if not _has_tensorflow():
        raise ImportError(f"source='tfds' needs tensorflow to read the prepared datasets; {hint}")
    if importlib.util.find_spec("tensorflow") is not None:  # before tfds initialises TensorFlow's devices
        keep_tensorflow_off_accelerators(importlib.import_module("tensorflow"))
    name = _TFDS_NAMES[dataset]
    tfds_split = _TFDS_SPLITS.get(dataset, {}).get(split, split)
    if limit is not None and dataset != "imagenet16_120":
        # Slice in tfds to avoid decoding the whole split; ImageNet16-120 is filtered by label afterwards instead.
        tfds_split = f"{tfds_split}[:{limit}]"
    try:
        ds = tfds.load(name, split=tfds_split, data_dir=None if folder is None else str(folder), download=False,
                       batch_size=-1, as_supervised=True)
    except (AssertionError, FileNotFoundError) as e:  # tfds 4.9 asserts when the prepared files are absent
        raise DataNotFoundError(
            f"tfds dataset {name!r} is not prepared in {folder or 'the tfds default data_dir'}; prepare it once with "
            f"`tfds build {name}` (add --data_dir=DIR to match) and pass that folder as data_dir ({e})") from e
    x, y = tfds.as_numpy(ds)
    x, y = np.asarray(x), np.asarray(y)
    if dataset == "imagenet16_120":
        keep = y < _IMAGENET16_CLASSES
        x, y = x[keep], y[keep]
    return x, y


def make_batches(x: np.ndarray, y: np.ndarray, num_batches: int, batch_size: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw num_batches * batch_size distinct images at random and stack them as (N, B, H, W, C) and (N, B).

    One permutation from `np.random.default_rng(seed)` picks all images at once, so no image appears twice and the
    batches are a function of (seed, x) only.
    """
    x, y = np.asarray(x), np.asarray(y)
    if num_batches < 1 or batch_size < 1:
        raise InputError(f"num_batches and batch_size must be positive, got {num_batches} and {batch_size}")
    if x.ndim != 4 or y.shape != x.shape[:1]:
        raise InputError(f"expected x of shape (M, H, W, C) and y of shape (M,), got {x.shape} and {y.shape}")
    needed = num_batches * batch_size
    if needed > len(x):
        raise InputError(f"{num_batches} batches of {batch_size} need {needed} distinct images but only {len(x)} "
                         "are available; lower --num_batches/--batch_size or use a larger data source")
    idx = np.random.default_rng(seed).permutation(len(x))[:needed]
    return (x[idx].reshape(num_batches, batch_size, *x.shape[1:]),
            y[idx].reshape(num_batches, batch_size).astype(np.int32))


def resize_batches(xs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, B, H, W, C) images resized to `size` = (H', W') with bilinear interpolation (antialiased when
    shrinking, `jax.image.resize`); returned unchanged when already that size. Used when a space's benchmark
    trained on another input size than the images at hand (e.g. TransNAS-Bench-101 on CIFAR-10 offline)."""
    xs = np.asarray(xs)
    if xs.ndim != 5:
        raise InputError(f"resize_batches: expected images (N, B, H, W, C), got shape {xs.shape}")
    if tuple(xs.shape[2:4]) == tuple(size):
        return xs
    shape = (*xs.shape[:2], *size, xs.shape[-1])
    return np.asarray(jax.image.resize(xs, shape, method="bilinear"), dtype=xs.dtype)


def batches_from_arrays(x: np.ndarray, y: np.ndarray, num_batches: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut given images into num_batches equal contiguous mini-batches: x[:M/N], x[M/N:2M/N], ...

    x is (M, 3, H, W) NCHW (PyTorch's layout) or (M, H, W, 3) NHWC, already normalised; it is returned as float32
    NHWC (N, M/N, H, W, 3), y as int32 (N, M/N). Batches are not shuffled, so batch i is exactly the i-th chunk a
    PyTorch loop over the same array would see.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4:
        raise InputError(f"inputs x must be 4-D (M, 3, H, W) or (M, H, W, 3), got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise InputError(f"labels y must be 1-D with one label per image ({len(x)}), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"labels y must be integers, got dtype {y.dtype}")
    if num_batches < 1 or len(x) % num_batches:
        raise InputError(f"{len(x)} images cannot be cut into {num_batches} equal mini-batches; "
                         "the number of images must be a positive multiple of num_batches")
    # Channels-last wins when both axes are 3 (e.g. 3x3 images): NHWC is this library's native layout.
    if x.shape[-1] == 3:
        nhwc = x
    elif x.shape[1] == 3:
        nhwc = x.transpose(0, 2, 3, 1)
    else:
        raise InputError(f"cannot find the 3-channel axis in inputs of shape {x.shape}; expected (M, 3, H, W) or "
                         "(M, H, W, 3)")
    b = len(x) // num_batches
    return (np.ascontiguousarray(nhwc, np.float32).reshape(num_batches, b, *nhwc.shape[1:]),
            y.astype(np.int32).reshape(num_batches, b))


def load_inputs_npz(path: str | os.PathLike, num_batches: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a user's fixed inputs from an .npz with keys `x` and `y`, then `batches_from_arrays` them."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"inputs file {path} not found")
    with np.load(path) as f:
        missing = [k for k in ("x", "y") if k not in f.files]
        if missing:
            raise UnknownNameError(f"inputs file {path} lacks key(s) {', '.join(missing)}; it has {', '.join(f.files)} "
                           "(expected x: images, y: labels)")
        x, y = f["x"], f["y"]
    return batches_from_arrays(x, y, num_batches)
