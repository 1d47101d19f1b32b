"""zico-jax: training-free NAS with ZiCo and ZiCo-BC in JAX/Flax."""

import pathlib
import re

from setuptools import find_packages, setup

# One version string: zico_jax/version.py (read here without importing the package and its dependencies).
VERSION = re.search(r'^__version__ = "([^"]+)"', pathlib.Path(__file__).with_name("zico_jax").joinpath(
    "version.py").read_text(encoding="utf-8"), re.M).group(1)

setup(
    name="zico-jax",
    version=VERSION,
    description="ZiCo / ZiCo-BC zero-shot NAS proxies in JAX/Flax: search spaces, fast scoring, correlation, search",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=3.11",  # jax 0.10.2 (the lowest admitted) requires Python >= 3.11
    # The repository's spaces/ folder installs as `zico_jax.spaces` (a top-level `spaces` would collide with the
    # PyPI package of that name). experiments/ is not installed: its scripts are run as files and call the library.
    packages=find_packages(include=["zico_jax", "zico_jax.*"]) + ["zico_jax.spaces"],
    package_dir={"zico_jax.spaces": "spaces"},
    # Tested: the full suite on Python 3.11 with jax 0.10.2, flax 0.12.8, optax 0.2.8, orbax-checkpoint 0.12.8;
    # CI's lowest-versions job installs every lower bound below exactly (.ci/lowest_constraints.txt) and runs a
    # smoke subset; the ZiCo, golden, CLI and sharding tests on Python 3.12 with jax 0.12.1, flax 0.12.12.
    # Admitted: jax 0.10.2-0.12.x, flax 0.12.8-0.12.x (jax >= 0.11 and flax >= 0.12.9 need Python >= 3.12, so
    # pip picks jax 0.10.2 / flax 0.12.8 on 3.11). The upper bounds keep a future release from changing numerics
    # or APIs under a user silently.
    install_requires=[
        "jax>=0.10.2,<0.13",
        "flax>=0.12.8,<0.13",
        "optax>=0.2.8,<0.3",
        "numpy>=2.0,<3",
        "orbax-checkpoint>=0.12.8,<0.13",
        "etils[epath,epy]>=1.12,<2",  # epath: paths that may be in a bucket (fsspec comes with it); epy: lazy imports
        "tensorflow-datasets>=4.9.10,<5",
        "importlib_resources>=6",  # tensorflow-datasets imports it without declaring it
        "absl-py>=2.5,<3",
        "ml_collections>=1.1,<2",
        "scipy>=1.14,<2",
        "matplotlib>=3.9,<4",
        "tqdm>=4.66,<5",
        "pooch>=1.8,<2",  # zico data fetch: the official benchmark files, verified by sha256 where published
    ],
    extras_require={
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4",
                 "ruff>=0.17.6,<0.18",  # tests/test_packaging.py: `ruff check .` is clean (rules move between minors)
                 # executing notebooks/zico_jax_quickstart.ipynb (tests/test_notebook.py)
                 "nbclient>=0.10,<0.11", "nbformat>=5.9,<6", "ipykernel>=6.29,<8"],
        # Output folders in Google Cloud Storage (gs://...): epath's fsspec backend for gs:// (without TensorFlow)
        # and the GCS client orbax asks about a bucket before it writes a checkpoint there.
        "gcs": ["gcsfs>=2024.2", "google-cloud-storage>=2.14"],
        # Reading prepared TFDS datasets (cifar10/cifar100/imagenet_resized) needs TensorFlow (+1.4 GB).
        "tfds": ["tensorflow>=2.16"],
        # The PyTorch reference path of the benchmarks (torch==2.13.0 CPU was measured).
        "torch": ["torch>=2.13,<3"],
    },
    # The compact tables and the CIFAR-10 sample the loaders read by default (zico_jax/packaged_data/*/SOURCE.md).
    package_data={"zico_jax": ["py.typed", "packaged_data/*.md", "packaged_data/*/*"]},
    entry_points={"console_scripts": ["zico=zico_jax.cli:main"]},
)
