"""`zico data fetch` / `zico data list`, offline: a fixture file served from a local HTTP server stands in for a
registry entry's URL (checked, unverified, wrong hash), and the manual-download and TFDS entries say what to do."""

import functools
import hashlib
import http.server
import re
import threading

import pytest

from zico_jax import cli, fetch  # noqa: E402

PAYLOAD = b"zico-jax fetch fixture\n" * 64
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Base URL of a local HTTP server serving tmp_path/served/tiny.bin; shut down after the test."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    served = tmp_path / "served"
    served.mkdir()
    (served / "tiny.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _register(monkeypatch, **fields):
    entry = fetch.Download(**{"name": "tiny", "description": "test file", "filename": "tiny.bin",
                              "use": "--groundtruth {path}", **fields})
    monkeypatch.setitem(fetch.REGISTRY, entry.name, entry)
    return entry


def test_verified_download_lands_in_the_cache(server, tmp_path, monkeypatch):
    entry = _register(monkeypatch, url=f"{server}/tiny.bin", sha256=PAYLOAD_SHA, hash_source="the test")
    cache = tmp_path / "cache"
    path = fetch.fetch("tiny", cache)
    assert path == cache / "tiny.bin" and path.read_bytes() == PAYLOAD
    text = fetch.instructions(entry, path)
    assert str(path) in text and "verified" in text and f"--groundtruth {path}" in text
    assert fetch.fetch("tiny", cache) == path  # cached: no second download needed


def test_cache_folder_from_the_environment(server, tmp_path, monkeypatch):
    _register(monkeypatch, url=f"{server}/tiny.bin", sha256=PAYLOAD_SHA)
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / "envcache"))
    assert fetch.cache_dir() == tmp_path / "envcache"
    assert fetch.cache_dir(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    assert fetch.fetch("tiny") == tmp_path / "envcache" / "tiny.bin"


def test_wrong_hash_is_one_line_and_keeps_nothing(server, tmp_path, monkeypatch):
    wrong = "0" * 64
    _register(monkeypatch, url=f"{server}/tiny.bin", sha256=wrong)
    cache = tmp_path / "cache"
    with pytest.raises(fetch.ChecksumError) as info:
        fetch.fetch("tiny", cache)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "tiny.bin" in message and wrong in message and PAYLOAD_SHA in message
    assert not (cache / "tiny.bin").exists()
    assert not cache.exists() or list(cache.iterdir()) == []  # no temporary file either
    # the CLI: exit 2, one line
    assert cli.main(["data", "fetch", "tiny", "--cache-dir", str(cache)]) == cli.EXIT_BAD_INPUT


def test_unpublished_hash_downloads_unverified(server, tmp_path, monkeypatch, capsys):
    _register(monkeypatch, url=f"{server}/tiny.bin", sha256=None, hash_source="none published (test)")
    cache = tmp_path / "cache"
    assert cli.main(["data", "fetch", "tiny", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert str(cache / "tiny.bin") in out and "UNVERIFIED" in out and PAYLOAD_SHA in out


def test_manual_download_names_the_url_and_the_place(tmp_path, monkeypatch, capsys):
    url = "https://drive.google.com/file/d/EXAMPLE/view"
    entry = _register(monkeypatch, url=url, manual="Google Drive needs a browser", extracted="tiny-simple")
    cache = tmp_path / "cache"
    with pytest.raises(fetch.ManualDownloadError) as info:
        fetch.fetch("tiny", cache)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and url in message and str(cache) in message and "tiny.bin" in message
    assert cli.main(["data", "fetch", "tiny", "--cache-dir", str(cache)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("zico data: error:") and url in err
    # once the user put the file there, fetch finds it and says how to extract and use it (unverified)
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(PAYLOAD)
    path = fetch.fetch("tiny", cache)
    assert path == cache / "tiny.bin"
    text = fetch.instructions(entry, path)
    assert "UNVERIFIED" in text and "tar xf" in text and f"--groundtruth {cache / 'tiny-simple'}" in text
    (cache / "tiny-simple").mkdir()  # the extracted folder is preferred
    assert fetch.fetch("tiny", cache) == cache / "tiny-simple"


def test_tfds_names_print_the_build_command(capsys):
    assert cli.main(["data", "fetch", "cifar10"]) == 0
    assert "tfds build cifar10" in capsys.readouterr().out


def test_list_prints_every_entry(tmp_path, capsys):
    assert cli.main(["data", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name, entry in fetch.REGISTRY.items():
        assert re.search(rf"^{re.escape(name)}\s", out, re.M), name
        if entry.url:
            assert entry.url in out


def test_unknown_name_exits_2_naming_the_known_ones(capsys):
    assert cli.main(["data", "fetch", "nope"]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("zico data: error:") and "'nope'" in err
    assert all(name in err for name in fetch.REGISTRY)


def test_registry_entries_are_complete():
    assert {"nats_tss", "nats_sss", "nasbench101", "transnas101"} <= set(fetch.REGISTRY)
    for entry in fetch.REGISTRY.values():
        if entry.tfds:
            continue
        assert entry.filename and entry.url.startswith("https://") and "{path}" in entry.use, entry.name
        if entry.sha256 is None:
            assert entry.hash_source.startswith("none published"), entry.name  # says where we looked
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256) and entry.hash_source, entry.name
        if "drive.google.com" in entry.url:
            assert entry.manual, entry.name  # Google Drive needs a browser
