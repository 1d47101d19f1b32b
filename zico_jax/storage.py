"""Output paths that may be a bucket: every results writer of zico-jax goes through here.

A path is anything `etils.epath.Path` accepts: a local path, or a URI (`gs://bucket/run`, `s3://...`, `az://...`,
`hf://...`). `pathlib` would turn `gs://bucket/run` into a local folder `gs:/bucket/run`; `epath` sends it to the
object store (through `tf.io.gfile` where TensorFlow is installed, else through fsspec, which needs `gcsfs` for
`gs://`: `pip install "zico-jax[gcs]"`).

Object stores differ from a disk in two ways that the writers account for:
  * an object cannot be appended to: `zico_jax.results.ResultsLog` rewrites a remote JSON-lines file whole, at
    most every `sync_seconds`, instead of appending each row (`appendable(path)` tells the two apart);
  * an object appears whole when its upload completes, so a reader never sees half a file; on a disk,
    `write_text`/`write_bytes` write a temporary file and rename it, for the same guarantee.

Example:
    >>> from zico_jax import storage
    >>> out = storage.as_path("gs://my-bucket/runs/nb201")     # or a local folder
    >>> storage.write_text(out / "summary.md", "| proxy | tau |")   # parent folders created on a disk
"""

from __future__ import annotations

import io
import os
from typing import Union

from etils import epath

PathLike = Union[str, os.PathLike]


def as_path(path: PathLike) -> epath.Path:
    """`path` as an `epath.Path` (a local path stays local; `gs://...` and the other URIs stay URIs)."""
    return epath.Path(path)


def is_remote(path: PathLike) -> bool:
    """Whether `path` is a URI of an object store (`scheme://...`) rather than a local path."""
    return "://" in os.fspath(path)


def appendable(path: PathLike) -> bool:
    """Whether a file at `path` can be appended to and fsync'ed (a local file; an object in a bucket cannot)."""
    return not is_remote(path)


def absolute(path: PathLike) -> epath.Path:
    """`path` made absolute (a URI is absolute already): what orbax's CheckpointManager expects."""
    path = as_path(path)
    return path if is_remote(path) else path.resolve()


def make_parent(path: PathLike) -> epath.Path:
    """`path` as an epath.Path, with its parent folder created (object stores have no folders: nothing to do)."""
    path = as_path(path)
    if not is_remote(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_bytes(path: PathLike, data: bytes) -> epath.Path:
    """Write `data` to `path` so that no reader sees a partial file: on a disk through a temporary file and a
    rename, to a bucket as one object (which appears when complete). Parent folders are created."""
    path = make_parent(path)
    if is_remote(path):
        with path.open("wb") as f:
            f.write(data)
        return path
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def write_text(path: PathLike, text: str) -> epath.Path:
    """`write_bytes` of `text` in UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


def read_text(path: PathLike) -> str:
    return as_path(path).read_text(encoding="utf-8")


def save_figure(figure, path: PathLike, **savefig_kwargs) -> epath.Path:
    """A matplotlib figure as an image file at `path` (format from the suffix, default PNG), local or remote."""
    path = as_path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    return write_bytes(path, buffer.getvalue())


def copy(source: PathLike, destination: PathLike) -> epath.Path:
    """Copy one file (either side local or remote), replacing `destination`."""
    return write_bytes(destination, as_path(source).read_bytes())
