"""Training data for `zico_jax.train`: in-memory arrays (the offline CIFAR-10 sample, cifar10 / cifar100 /
imagenet16_120 through `zico_jax.data`) and imagenet2012 streamed by tf.data from prepared tfds files.

Both give `batches(start_step)` (an endless iterator that starts where a resumed run stopped), `eval_batches(size)`,
`steps_per_epoch` and `image_shape`. Data order is a function of (seed, epoch), so a resumed run reads what an
uninterrupted one would.

Example:
    >>> data = load_data(config)           # config: experiments/configs/train.py
    >>> x, y = next(data.batches(0))
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from zico_jax import data as image_data
from zico_jax.errors import InputError

DATASETS = (*image_data.DATASETS, "imagenet2012")  # per-dataset facts (classes, normalisation) are zico_jax.data's


class ArrayData:
    """In-memory images: epoch e visits `default_rng([seed, e]).permutation(n)` in batches, dropping the rest."""

    def __init__(self, x_train, y_train, x_eval, y_eval, batch_size: int, seed: int):
        if batch_size > len(x_train):
            raise InputError(f"batch_size {batch_size} exceeds the {len(x_train)} training images; lower batch_size")
        self.x, self.y, self.x_eval, self.y_eval = x_train, y_train, x_eval, y_eval
        self.batch_size, self.seed = batch_size, seed
        self.steps_per_epoch = len(x_train) // batch_size
        self.image_shape = x_train.shape[1:]

    def batches(self, start_step: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        step = start_step
        while True:
            epoch, i = divmod(step, self.steps_per_epoch)
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))
            for k in range(i, self.steps_per_epoch):
                idx = order[k * self.batch_size:(k + 1) * self.batch_size]
                yield self.x[idx], self.y[idx]
            step = (epoch + 1) * self.steps_per_epoch

    def eval_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, len(self.x_eval), batch_size):
            yield self.x_eval[i:i + batch_size], self.y_eval[i:i + batch_size]


class ImageNetData:
    """imagenet2012 streamed from prepared tfds files (nothing is downloaded)."""

    def __init__(self, config, image_size: int):
        self.tfds, self.tf = _import_tfds()
        self.config, self.size = config, image_size
        try:
            info = self.tfds.builder("imagenet2012", data_dir=config.get("data_dir")).info
            num_train = info.splits["train"].num_examples
        except Exception as e:
            raise image_data.DataNotFoundError(f"tfds dataset 'imagenet2012' is not prepared in "
                                      f"{config.get('data_dir') or 'the tfds default data_dir'}: {e}") from e
        self.steps_per_epoch = min(num_train, config.get("limit_train") or num_train) // config.batch_size
        self.image_shape = (image_size, image_size, 3)

    def _dataset(self, split: str, train: bool, seed: int, skip: int = 0):
        tf, size = self.tf, self.size
        mean, std = (tf.constant(v, tf.float32) for v in image_data.NORMALIZATION["imagenet2012"])
        limit = self.config.get("limit_train" if train else "limit_eval")
        ds = self.tfds.load("imagenet2012", split=f"{split}[:{limit}]" if limit else split, download=False,
                            data_dir=self.config.get("data_dir"), shuffle_files=train,
                            read_config=self.tfds.ReadConfig(shuffle_seed=seed),
                            decoders={"image": self.tfds.decode.SkipDecoding()})

        def prepare(example):
            jpeg = example["image"]
            if train:  # Inception-style random-resized crop (area 8-100%, aspect 3/4-4/3) and flip
                begin, crop, _ = tf.image.sample_distorted_bounding_box(
                    tf.image.extract_jpeg_shape(jpeg), tf.zeros([1, 0, 4]), area_range=(0.08, 1.0),
                    aspect_ratio_range=(3 / 4, 4 / 3), max_attempts=10, use_image_if_no_bounding_boxes=True)
                window = tf.stack([begin[0], begin[1], crop[0], crop[1]])
                image = tf.image.resize(tf.image.decode_and_crop_jpeg(jpeg, window, channels=3), [size, size])
                image = tf.image.random_flip_left_right(image)
            else:  # shorter side to size * 256/224, then the central size x size
                image = tf.cast(tf.image.decode_jpeg(jpeg, channels=3), tf.float32)
                hw = tf.cast(tf.shape(image)[:2], tf.float32)
                new = tf.cast(tf.round(hw * (size * 256 / 224) / tf.reduce_min(hw)), tf.int32)
                image = tf.image.resize_with_crop_or_pad(tf.image.resize(image, new), size, size)
            return (image / 255.0 - mean) / std, tf.cast(example["label"], tf.int32)

        if train:  # skip (resuming mid-epoch) before decoding: the skipped images cost no JPEG work
            ds = ds.shuffle(16 * self.config.batch_size, seed=seed).skip(skip)
        return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)

    def batches(self, start_step: int):
        epoch, skip = divmod(start_step, self.steps_per_epoch)
        while True:
            ds = self._dataset("train", True, self.config.seed * 100003 + epoch, skip * self.config.batch_size)
            ds = ds.batch(self.config.batch_size, drop_remainder=True).take(self.steps_per_epoch - skip)
            yield from ds.prefetch(2).as_numpy_iterator()
            epoch, skip = epoch + 1, 0

    def eval_batches(self, batch_size: int):
        yield from self._dataset("validation", False, 0).batch(batch_size).prefetch(2).as_numpy_iterator()


def _import_tfds():
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError("dataset 'imagenet2012' needs tensorflow and tensorflow_datasets; install them with: "
                          "pip install 'zico-jax[tfds]'") from e
    image_data.keep_tensorflow_off_accelerators(tf)
    return tfds, tf


def load_data(config, image_size: Optional[int] = None):
    """The training and evaluation data a config names (see the module docstring)."""
    if config.dataset not in DATASETS:
        raise InputError(f"unknown dataset {config.dataset!r}; expected one of {', '.join(DATASETS)}")
    if config.data_source not in image_data.SOURCES:
        raise InputError(f"unknown data_source {config.data_source!r}; expected one of {', '.join(image_data.SOURCES)}")
    if config.dataset == "imagenet2012":
        if config.data_source != "tfds":
            raise InputError("dataset 'imagenet2012' has no offline sample; set data_source='tfds'")
        return ImageNetData(config, image_size or 224)
    def get(split, limit):
        x, y = image_data.load_images(config.dataset, split, config.data_source, config.get("data_dir"))
        if config.get(limit):  # a fixed random subset, not the first images: the offline sample is sorted by class
            keep = np.sort(np.random.default_rng(0).permutation(len(x))[:config.get(limit)])
            x, y = x[keep], y[keep]
        return x, y

    return ArrayData(*get("train", "limit_train"), *get("test", "limit_eval"), config.batch_size, config.seed)


def imagenet_batches(config, image_size: int):
    """`config.num_batches` mini-batches of `config.batch_size` ImageNet-1k TRAINING images at image_size, as the
    official search takes them (evolution_search.py `main`: the first `maxbatch` batches of a shuffled training
    loader, drawn once and reused for every candidate): (N, B, H, W, 3) float32 and (N, B) int32. Read by
    `zico_jax.train_data.ImageNetData` from prepared tfds files (config.data_dir; nothing is downloaded), with its
    training transform: random-resized crop (area 8-100%, aspect 3/4-4/3) + horizontal flip + the torchvision
    normalisation. The official transform (xautodl `get_datasets('imagenet-1k')`) also applies ColorJitter(0.4,
    0.4, 0.4, 0.2) and PCA lighting noise (0.1), which are not reproduced. The draw depends on config.seed."""
    if config.data_source != "tfds":
        raise InputError(f"config.data_source {config.data_source!r}: dataset 'imagenet2012' is read from prepared "
                         "tfds files only; set data_source='tfds' (and data_dir to the tfds data_dir)")
    stream = ImageNetData(config, image_size).batches(0)
    xs, ys = zip(*(next(stream) for _ in range(int(config.num_batches))))
    return np.stack([np.asarray(x, np.float32) for x in xs]), np.stack([np.asarray(y, np.int32) for y in ys])
