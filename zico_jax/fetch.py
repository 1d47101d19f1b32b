"""The full official benchmark files, fetched on request into a cache folder (`zico data list`, `zico data fetch`).

zico-jax ships compact tables (see `zico_jax.data`); the complete official benchmark files are large and only needed
for full-space studies. `REGISTRY` names each of them with its public URL, its SHA-256 where the benchmark's authors
publish one (the download is then verified, and a mismatch discards it), and whether it sits behind a manual step
(a Google Drive folder needs a browser: zico-jax then says where to get the file and where to put it). Downloads go
through `pooch` (`pip install "pooch>=1.8"`) into the cache folder:

    explicit argument (--cache-dir) > $ZICO_JAX_CACHE_DIR > pooch.os_cache("zico_jax") (~/.cache/zico_jax on Linux)

($ZICO_JAX_CACHE_DIR holds downloads; $ZICO_JAX_CACHE is JAX's compilation cache, a separate folder.)
A file with no published hash is downloaded unverified: its computed SHA-256 is reported so it can be pinned.
The CIFAR / ImageNet16-120 images are TFDS datasets, prepared by tensorflow-datasets itself: `fetch` of those names
raises `TfdsDataset`, whose message is the `tfds build` command to run.

Example:
    >>> path = fetch("nasbench101")            # ~499 MB, SHA-256 verified
    >>> print(instructions(REGISTRY["nasbench101"], path))
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import re

import pooch

from zico_jax.errors import InputError, UnknownNameError

CACHE_ENV = "ZICO_JAX_CACHE_DIR"


@dataclasses.dataclass(frozen=True)
class Download:
    """One fetchable file (or TFDS dataset) and how zico-jax's loaders are pointed at it."""

    name: str
    description: str
    filename: str = ""  # the file's name in the cache folder
    url: str = ""  # public URL: a direct download, or the page of a manual download
    sha256: str | None = None  # None: no checksum is published (the file is then unverified)
    hash_source: str = ""  # where the hash was published, or where we looked and found none
    manual: str | None = None  # None: pooch downloads `url`; else the manual step, in words
    extracted: str | None = None  # for a .tar: the folder it extracts to (what the loaders read)
    use: str = ""  # how to point the loaders at the file, with {path} for its path
    tfds: str | None = None  # TFDS dataset name: prepared by `tfds build`, not by zico-jax


_NATS_DRIVE = "https://drive.google.com/drive/folders/1zjB6wMANiKwB2A1yil2hQ8H_qyeSe2yt"
_NATS_HASH = ("none published (github.com/D-X-Y/NATS-Bench README: Google Drive / Baidu-Pan / Dropbox links only; the "
              "'3ffb9'/'50262' in the name is a 5-character md5 tag, too short to verify a download with)")
_DRIVE_STEP = "Google Drive needs a browser; sign in if it reports a quota error"



def _nats_archive(space: str, description: str, tag: str, drive_id: str, env: str) -> Download:
    """A NATS-Bench 'simple' archive (TSS or SSS): a manual Google Drive download, no published hash."""
    folder = f"NATS-{space.split('_')[1]}-v1_0-{tag}-simple"
    return Download(space, description, filename=f"{folder}.tar",
                    url=f"https://drive.google.com/file/d/{drive_id}/view?usp=sharing", hash_source=_NATS_HASH,
                    manual=_DRIVE_STEP, extracted=folder,
                    use=f"pip install nats_bench; then --config.space={space} --config.groundtruth={{path}} or export "
                        f"{env}={{path}}")


REGISTRY: dict[str, Download] = {d.name: d for d in (
    _nats_archive("nats_tss", "NATS-Bench topology search space (= NAS-Bench-201), 15,625 archs, 'simple' archive",
                  "3ffb9", "17_saCsj_krKjlCBLOJEpNtzPXArMCqxU", "ZICO_JAX_NB201"),
    _nats_archive("nats_sss", "NATS-Bench size search space, 32,768 archs, 'simple' archive",
                  "50262", "1scOMTUwcQhAMa_IMedp9lTzwmgqHLGgA", "ZICO_JAX_NATS_SSS"),
    Download(
        "nasbench101", "NAS-Bench-101, every spec at 108 epochs (~499 MB)",
        filename="nasbench_only108.tfrecord",
        url="https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord",
        sha256="4c39c3936e36a85269881d659e44e61a245babcb72cb374eacacf75d0e5f4fd1",
        hash_source="github.com/google-research/nasbench README, 'Download the dataset'",
        use="install the official API (git clone https://github.com/google-research/nasbench && pip install "
            "./nasbench; needs TensorFlow); then --config.space=nasbench101 --config.groundtruth={path} or "
            "export ZICO_JAX_NB101={path}"),
    Download(
        "nasbench101_full", "NAS-Bench-101, every spec at 4, 12, 36 and 108 epochs (~1.95 GB)",
        filename="nasbench_full.tfrecord",
        url="https://storage.googleapis.com/nasbench/nasbench_full.tfrecord",
        sha256="3d64db8180fb1b0207212f9032205064312b6907a3bbc81eabea10db2f5c7e9c",
        hash_source="github.com/google-research/nasbench README, 'Download the dataset'",
        use="as nasbench101: --config.space=nasbench101 --config.groundtruth={path} or export ZICO_JAX_NB101={path}"),
    Download(
        "transnas101", "TransNAS-Bench-101, micro and macro spaces, all seven tasks",
        filename="transnas-bench_v10141024.pth",
        url="https://drive.google.com/drive/folders/1HlLr2ihZX_ZuV3lJX_4i7q4w-ZBdhJ6o",
        hash_source="none published (github.com/yawen-d/TransNASBench README: Google Drive folder or VEGA docs only)",
        manual=_DRIVE_STEP,
        use="install torch and the API of github.com/yawen-d/TransNASBench (or NASLib); then "
            "--config.space=transnas101_micro|transnas101_macro --config.task=TASK --config.groundtruth={path}, or "
            "export "
            "ZICO_JAX_TNB101_MICRO={path} ZICO_JAX_TNB101_MACRO={path}"),
    Download("cifar10", "CIFAR-10 images (TFDS)", tfds="cifar10"),
    Download("cifar100", "CIFAR-100 images (TFDS)", tfds="cifar100"),
    Download("imagenet16_120", "ImageNet16-120 images (TFDS imagenet_resized/16x16, first 120 classes)",
             tfds="imagenet_resized/16x16"),
)}


class FetchError(InputError):
    """A fetch that cannot complete: the one-line message says why and what to do."""


class ManualDownloadError(FetchError, FileNotFoundError):
    """The file is behind a manual download and is not in the cache folder yet."""


class ChecksumError(FetchError):
    """The downloaded file's SHA-256 is not the published one; the download was discarded."""


class TfdsDataset(FetchError):
    """The name is a TFDS dataset, prepared by `tfds build` (the message is the command), not fetched by zico-jax."""


def cache_dir(override: str | os.PathLike | None = None) -> pathlib.Path:
    """The download folder: `override` > $ZICO_JAX_CACHE_DIR > pooch.os_cache("zico_jax")."""
    if override is not None:
        return pathlib.Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    return pathlib.Path(pooch.os_cache("zico_jax"))


def get(name: str) -> Download:
    """The registry entry `name`; an unknown name raises KeyError naming the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNameError(f"unknown data name {name!r}; known: {', '.join(REGISTRY)}") from None


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tfds_command(entry: Download) -> str:
    return f"tfds build {entry.tfds} --data_dir=DIR"


def _present(entry: Download, folder: pathlib.Path) -> pathlib.Path | None:
    """The extracted folder or the file itself, if the user already put it in the cache folder."""
    if entry.extracted and (folder / entry.extracted).is_dir():
        return folder / entry.extracted
    if (folder / entry.filename).is_file():
        return folder / entry.filename
    return None


def fetch(name: str, cache: str | os.PathLike | None = None, progressbar: bool = False) -> pathlib.Path:
    """The path of registry entry `name` in the cache folder, downloading (and verifying) it first if needed.

    Raises KeyError (unknown name), TfdsDataset (the message is the `tfds build` command), ManualDownloadError
    (behind a manual download and not in the cache yet: the message names the URL and where to put the file),
    ChecksumError (the download's SHA-256 is not the published one; nothing is kept), ImportError (no pooch).
    """
    entry = get(name)
    if entry.tfds:
        raise TfdsDataset(f"{name} is the TFDS dataset {entry.tfds!r}, prepared by tensorflow-datasets itself: run "
                          f"`{tfds_command(entry)}` (pip install 'zico-jax[tfds]'), then pass --data-source tfds "
                          "--data-dir DIR")
    folder = cache_dir(cache)
    if entry.manual:
        found = _present(entry, folder)
        if found is None:
            raise ManualDownloadError(
                f"{name}: {entry.filename} is a manual download ({entry.manual}): open {entry.url}, download "
                f"{entry.filename} and put it in {folder} (or extract it there), then run `zico data fetch {name}` "
                "again; or point the loader at it directly (see `zico data list`)")
        if found.is_dir() or entry.sha256 is None:
            return found
        actual = sha256_of(found)
        if actual != entry.sha256:
            raise ChecksumError(f"{name}: {found} failed its checksum: expected sha256 {entry.sha256}, got "
                                f"{actual}; delete it and download it again")
        return found
    known = f"sha256:{entry.sha256}" if entry.sha256 else None
    try:
        path = pooch.retrieve(entry.url, known_hash=known, fname=entry.filename, path=folder,
                              progressbar=progressbar)
    except ValueError as e:  # pooch: "SHA256 hash of downloaded file (...) does not match ... but got X ..."
        if "hash" not in str(e).lower():
            raise
        got = re.search(r"got\s+([0-9a-fA-F]{64})", str(e))
        raise ChecksumError(
            f"{name}: {entry.filename} from {entry.url} failed its checksum: expected sha256 {entry.sha256}, got "
            f"{got.group(1) if got else 'a different hash'}; the download was discarded (nothing kept in "
            f"{folder})") from None
    return pathlib.Path(path)


def instructions(entry: Download, path: pathlib.Path) -> str:
    """What to print after a fetch: where the file is, whether it was verified, how to point the loaders at it."""
    lines = [f"{entry.name}: {path}"]
    if path.is_dir():
        lines.append("  (extracted folder found in the cache; not checksummed)")
    elif entry.sha256:
        lines.append(f"  sha256 {entry.sha256} (verified; published in {entry.hash_source.split(',')[0]})")
    else:
        lines.append(f"  UNVERIFIED: no sha256 is published for {entry.filename}; its sha256 is {sha256_of(path)}")
    target = path
    if entry.extracted and path.is_file():
        target = path.parent / entry.extracted
        lines.append(f"  extract it first: tar xf {path} -C {path.parent}   (gives {target})")
    lines.append("  use: " + entry.use.format(path=target))
    return "\n".join(lines)


def format_list(cache: str | os.PathLike | None = None) -> str:
    """One block per registry entry: name, description, URL, checksum, manual step, and whether it is cached."""
    folder = cache_dir(cache)
    out = [f"cache folder: {folder}  (--cache-dir DIR or ${CACHE_ENV})"]
    for entry in REGISTRY.values():
        if entry.tfds:
            out.append(f"{entry.name:<17} {entry.description}\n{'':<17} TFDS: `{tfds_command(entry)}`")
            continue
        found = _present(entry, folder)
        state = f"in cache: {found}" if found else "not in cache"
        how = f"manual download ({entry.manual})" if entry.manual else "downloaded by `zico data fetch`"
        sha = f"sha256 {entry.sha256}" if entry.sha256 else "sha256: " + entry.hash_source
        out.append(f"{entry.name:<17} {entry.description}\n{'':<17} {entry.filename}: {entry.url}\n"
                   f"{'':<17} {how}; {sha}; {state}")
    return "\n".join(out)


__all__ = ["REGISTRY", "Download", "CACHE_ENV", "cache_dir", "fetch", "get", "instructions",
           "format_list", "sha256_of", "FetchError", "ManualDownloadError", "ChecksumError", "TfdsDataset"]
