"""zico_jax.data: data-folder lookup, offline CIFAR-10 loading and normalisation, batch drawing and cutting."""

import pathlib
import sys
import types

import numpy as np
import pytest

from zico_jax import data as D


@pytest.fixture(scope="module")
def raw_sample():
    """The offline sample as stored (uint8), read independently of load_images."""
    with np.load(D.data_dir() / "cifar10_sample" / "cifar10_sample.npz") as f:
        return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}


# --- data_dir -------------------------------------------------------------------------------------------------------

def test_data_dir_override_beats_env(monkeypatch, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    monkeypatch.setenv(D.DATA_ENV, str(b))
    assert D.data_dir(a) == a
    assert D.data_dir(str(a)) == a


def test_data_dir_env_beats_default(monkeypatch, tmp_path):
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path))
    assert D.data_dir() == tmp_path


def test_data_dir_default_is_the_packaged_data(monkeypatch):
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    assert D.data_dir() == D.PACKAGED_DATA == pathlib.Path(D.__file__).resolve().parent / "packaged_data"
    for table in ("cifar10_sample/cifar10_sample.npz", "nb201_accuracy/nb201_accuracy.csv",
                  "nasbench_suite_zero_subsets/nb101_accuracy_subset.csv", "ofa_note10_latency_lut/ofa_note10_lut.csv"):
        assert (D.PACKAGED_DATA / table).is_file(), table
    assert all((folder / "SOURCE.md").is_file() for folder in D.PACKAGED_DATA.iterdir() if folder.is_dir())


def test_data_dir_explicit_missing_folder_is_an_error(monkeypatch, tmp_path):
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    with pytest.raises(D.DataNotFoundError, match="nope"):
        D.data_dir(tmp_path / "nope")
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path / "nope_env"))
    with pytest.raises(D.DataNotFoundError, match="ZICO_JAX_DATA"):
        D.data_dir()


def test_data_dir_missing_packaged_data_names_it_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    monkeypatch.setattr(D, "PACKAGED_DATA", tmp_path / "site-packages" / "zico_jax" / "packaged_data")
    with pytest.raises(D.DataNotFoundError) as err:
        D.data_dir()
    msg = str(err.value)
    assert str(D.PACKAGED_DATA) in msg and "config.data_dir" in msg and D.DATA_ENV in msg
    assert isinstance(err.value, FileNotFoundError)


# --- load_images ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_offline_shapes_dtypes_labels(raw_sample, split):
    x, y = D.load_images("cifar10", split)
    assert x.shape == (1000, 32, 32, 3) and x.dtype == np.float32
    assert y.shape == (1000,) and y.dtype == np.int32
    np.testing.assert_array_equal(y, raw_sample[f"y_{split}"])


def test_offline_normalisation_matches_raw_pixels(raw_sample):
    x, _ = D.load_images("cifar10", "train")
    x = x.astype(np.float64)  # reduce in float64: float32 sums over 1M pixels drift by ~1e-4
    raw = raw_sample["x_train"].astype(np.float64) / 255.0
    mean = np.array([125.3, 123.0, 113.9]) / 255
    std = np.array([63.0, 62.1, 66.7]) / 255
    # Per-channel statistics, computed from the uint8 pixels without the library.
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), (raw.mean(axis=(0, 1, 2)) - mean) / std, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 1, 2)), raw.std(axis=(0, 1, 2)) / std, rtol=1e-5)
    # The sample's channel means are ~(0.490, 0.482, 0.444): close to CIFAR-10's constants, so roughly centred.
    assert np.all(np.abs(x.mean(axis=(0, 1, 2))) < 0.05)
    np.testing.assert_allclose(x[3, 5, 7], (raw[3, 5, 7] - mean) / std, rtol=1e-5)


def test_offline_limit_and_data_dir_argument(raw_sample):
    x, y = D.load_images("cifar10", "test", data_dir=D.data_dir(), limit=10)
    assert x.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(y, raw_sample["y_test"][:10])


def test_offline_only_cifar10_says_use_tfds():
    with pytest.raises(ValueError, match="source='tfds'"):
        D.load_images("cifar100", "train", source="offline")


@pytest.mark.parametrize("kwargs,listed", [
    (dict(dataset="mnist"), "cifar10, cifar100, imagenet16_120"),
    (dict(split="valid"), "train, test"),
    (dict(source="web"), "offline, tfds"),
])
def test_load_images_rejects_unknown_names(kwargs, listed):
    with pytest.raises(ValueError, match=listed):
        D.load_images(**kwargs)


def test_offline_missing_file(tmp_path):
    with pytest.raises(D.DataNotFoundError, match="cifar10_sample.npz"):
        D.load_images(data_dir=tmp_path)


def test_tfds_unprepared_or_missing_backend_explains_fix(tmp_path):
    # Without tensorflow: says how to install it; with it but no prepared data: says how to build it.
    with pytest.raises((ImportError, D.DataNotFoundError), match=r"zico-jax\[tfds\]|tfds build"):
        D.load_images("cifar10", "train", source="tfds", data_dir=tmp_path)


def test_tfds_names_splits_and_imagenet16_120_subset(monkeypatch, tmp_path):
    """A stand-in for tensorflow_datasets checks the load() arguments and the 120-class filter."""
    calls = []

    def load(name, split, data_dir, download, batch_size, as_supervised):
        calls.append((name, split, data_dir, download, batch_size, as_supervised))
        labels = np.array([0, 500, 119, 120, 7], np.int64)
        return np.full((5, 16, 16, 3), 128, np.uint8) + labels[:, None, None, None].astype(np.uint8), labels

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", types.SimpleNamespace(load=load, as_numpy=lambda d: d))
    monkeypatch.setattr(D, "_has_tensorflow", lambda: True)
    x, y = D.load_images("imagenet16_120", "test", source="tfds", data_dir=tmp_path)
    assert calls[-1] == ("imagenet_resized/16x16", "validation", str(tmp_path), False, -1, True)
    np.testing.assert_array_equal(y, [0, 119, 7])
    assert x.shape == (3, 16, 16, 3) and x.dtype == np.float32 and y.dtype == np.int32
    mean, std = D.NORMALIZATION["imagenet16_120"]
    np.testing.assert_allclose(x[1, 0, 0], ((128 + 119) / 255 - np.array(mean)) / np.array(std), rtol=1e-5)
    D.load_images("cifar100", "train", source="tfds", limit=4)
    assert calls[-1][:3] == ("cifar100", "train[:4]", None)


# --- make_batches ---------------------------------------------------------------------------------------------------

def _indexed_images(m=50):
    """Images whose pixels all equal their row number, so each drawn image can be traced back."""
    x = np.broadcast_to(np.arange(m, dtype=np.float32)[:, None, None, None], (m, 4, 4, 3)).copy()
    return x, np.arange(m, dtype=np.int64) % 10


def test_make_batches_shapes_and_determinism():
    x, y = _indexed_images()
    xs, ys = D.make_batches(x, y, 3, 8, seed=1)
    assert xs.shape == (3, 8, 4, 4, 3) and ys.shape == (3, 8) and ys.dtype == np.int32
    xs2, ys2 = D.make_batches(x, y, 3, 8, seed=1)
    np.testing.assert_array_equal(xs, xs2)
    np.testing.assert_array_equal(ys, ys2)
    xs3, _ = D.make_batches(x, y, 3, 8, seed=2)
    assert not np.array_equal(xs, xs3)


def test_make_batches_distinct_images_with_their_labels():
    x, y = _indexed_images()
    xs, ys = D.make_batches(x, y, 2, 25, seed=0)  # uses every image
    ids = xs[:, :, 0, 0, 0].astype(int)
    assert sorted(ids.ravel()) == list(range(50))
    np.testing.assert_array_equal(ys, ids % 10)
    expected = np.random.default_rng(0).permutation(50)
    np.testing.assert_array_equal(ids.ravel(), expected)


def test_make_batches_too_few_images():
    x, y = _indexed_images(10)
    with pytest.raises(ValueError, match=r"need 12 distinct images but only 10"):
        D.make_batches(x, y, 2, 6, seed=0)


# --- batches_from_arrays / load_inputs_npz --------------------------------------------------------------------------

def test_batches_from_arrays_contiguous_nchw_to_nhwc():
    rng = np.random.default_rng(0)
    x_nchw = rng.normal(size=(6, 3, 5, 4)).astype(np.float64)
    y = np.arange(6)
    xs, ys = D.batches_from_arrays(x_nchw, y, 2)
    assert xs.shape == (2, 3, 5, 4, 3) and xs.dtype == np.float32 and ys.dtype == np.int32
    np.testing.assert_array_equal(ys, [[0, 1, 2], [3, 4, 5]])
    # Batch 1, image 2 is x[5] with channels moved last.
    np.testing.assert_allclose(xs[1, 2], x_nchw[5].transpose(1, 2, 0).astype(np.float32))
    np.testing.assert_allclose(xs[0, 0, 2, 1], x_nchw[0, :, 2, 1].astype(np.float32))


def test_batches_from_arrays_nhwc_kept():
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype(np.float32)
    xs, ys = D.batches_from_arrays(x, np.array([3, 1, 4, 1]), 4)
    assert xs.shape == (4, 1, 8, 8, 3)
    np.testing.assert_array_equal(xs[:, 0], x)
    np.testing.assert_array_equal(ys[:, 0], [3, 1, 4, 1])


@pytest.mark.parametrize("x_shape,y,n,match", [
    ((5, 3, 4, 4), np.arange(5), 2, "5 images cannot be cut into 2"),
    ((6, 3, 4, 4), np.arange(5), 2, r"one label per image \(6\)"),
    ((6, 3, 4), np.arange(6), 2, "must be 4-D"),
    ((6, 4, 5, 5), np.arange(6), 2, "3-channel axis"),
    ((6, 3, 4, 4), np.arange(6) * 0.5, 2, "integers"),
])
def test_batches_from_arrays_errors(x_shape, y, n, match):
    with pytest.raises(ValueError, match=match):
        D.batches_from_arrays(np.zeros(x_shape, np.float32), y, n)


def test_load_inputs_npz(tmp_path):
    x = np.random.default_rng(2).normal(size=(4, 3, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x, y=np.array([0, 1, 2, 3]))
    xs, ys = D.load_inputs_npz(tmp_path / "in.npz", 2)
    assert xs.shape == (2, 2, 6, 6, 3)
    np.testing.assert_array_equal(xs[1, 0], x[2].transpose(1, 2, 0))
    np.savez(tmp_path / "bad.npz", x=x, labels=np.arange(4))
    with pytest.raises(KeyError, match=r"bad\.npz.*lacks key\(s\) y"):
        D.load_inputs_npz(tmp_path / "bad.npz", 2)
    with pytest.raises(D.DataNotFoundError, match="missing.npz"):
        D.load_inputs_npz(tmp_path / "missing.npz", 2)


def test_tensorflow_is_kept_off_the_accelerators():
    """The tfds input pipeline's TensorFlow is told to see no GPU (it decodes on the host; JAX owns the device)."""
    calls = []

    class FakeConfig:
        @staticmethod
        def set_visible_devices(devices, kind):
            calls.append((list(devices), kind))

    class FakeTF:
        config = FakeConfig

    D.keep_tensorflow_off_accelerators(FakeTF)
    assert calls == [([], "GPU")]

    class InitialisedConfig:
        @staticmethod
        def set_visible_devices(devices, kind):
            raise RuntimeError("Visible devices cannot be modified after being initialized")

    class InitialisedTF:
        config = InitialisedConfig

    D.keep_tensorflow_off_accelerators(InitialisedTF)  # harmless once TF has its devices
