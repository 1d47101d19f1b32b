"""Results that survive a kill, and progress that batch logs can read.

`ResultsLog(path)` is an append-only JSON-lines file: one JSON object per scored candidate, written with flush +
`os.fsync` after every row, so a run killed at any moment loses at most the row in flight. Rows are keyed by
`row[key]` (default "arch"); `done()` is the set of keys already in the file, which is how a rerun resumes.
`path` may be in a bucket (`gs://...`, see `zico_jax.storage`): an object cannot be appended to, so there the
file is rewritten whole at most every `sync_seconds` (default 30 s) and at `close()`; a run killed there loses
the rows of at most the last `sync_seconds`, which a rerun scores again.

A run killed mid-write can leave a truncated last line. Reading ignores any line that is not valid JSON with a
warning (such a line can only come from a kill: every complete row is one `json.dumps` plus a newline), and the
writer first ends the partial line, so the rewritten row starts on a line of its own.

Only process 0 writes (`jax.process_index() == 0`); on the other processes of a multi-host run `append` is a
no-op, while `done()` still reads the shared file so that every process skips the same candidates.

`write_csv(path, rows, columns)` writes rows as a CSV table (empty cells for missing, None or NaN values); the
correlation run uses it for scores.csv. `write_json(path, obj)` writes strict JSON. Every path here may be local or
in a bucket.

`Progress` wraps tqdm.auto (count, rate, time left; a widget in a notebook) for interactive runs and, every
`log_every` items, writes one plain absl log line (count/total, rate/s, ETA) so that logs of batch jobs show
progress too.

Example:
    >>> with ResultsLog("runs/x/scores.jsonl") as log, Progress(total=len(todo), desc="scoring") as bar:
    ...     for arch in todo:
    ...         if arch not in log.done():
    ...             log.append({"arch": arch, "zico": 1.0})
    ...         bar.update()
    >>> rows = read_rows("runs/x/scores.jsonl")
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import numbers
import os
import sys
import time
from typing import Any, Mapping

from absl import logging
from etils import epath
from tqdm import auto as tqdm_auto

from zico_jax import storage
from zico_jax.errors import InputError
from zico_jax.sharding import is_writer


def _parse_lines(path: epath.Path) -> list[dict[str, Any]]:
    rows = []
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            where = "its last line" if number >= len(lines) - 1 else f"line {number}"
            logging.warning("%s: ignoring %s, which is not complete JSON (a run killed mid-write): %.80r",
                            path, where, line)
            continue
        if not isinstance(row, dict):
            raise InputError(f"{path}, line {number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete row of a JSON-lines results file, in file order; [] if the file does not exist."""
    path = storage.as_path(path)
    return _parse_lines(path) if path.exists() else []


class ResultsLog:
    """Append-only, crash-safe JSON-lines results file (see the module docstring).

    Args:
      path: the .jsonl file; its folder is created if needed.
      key: the field that names a row; `done()` collects it.
      writer: whether this process writes; default `sharding.is_writer()` (process 0).
      sync_seconds: for a file in a bucket (which cannot be appended to), the least time between two rewrites of
        the whole file (0: after every row). A local file is appended to and fsync'ed after every row.
    """

    def __init__(self, path: str | os.PathLike, key: str = "arch", writer: bool | None = None,
                 sync_seconds: float = 30.0):
        self.path = storage.as_path(path)
        self.sync_seconds = sync_seconds
        self.key = key
        self.writer = is_writer() if writer is None else writer
        self._rows = read_rows(self.path)
        for number, row in enumerate(self._rows, start=1):
            if key not in row:
                raise InputError(f"{self.path}: row {number} has no {key!r} field (fields: {', '.join(row)})")
        self._done = {row[key] for row in self._rows}
        self._file = None
        self._unsynced = False
        self._last_sync = time.monotonic()
        if self.writer and storage.appendable(self.path):
            storage.make_parent(self.path)
            needs_newline = self.path.exists() and os.path.getsize(self.path) > 0 and not _ends_with_newline(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
            if needs_newline:  # end a truncated last line so the next row starts on a line of its own
                self._file.write("\n")
                self._flush()

    def done(self) -> set:
        """The keys of the rows already written (read at open, plus those appended since)."""
        return set(self._done)

    def rows(self) -> list[dict[str, Any]]:
        """All complete rows: those read at open followed by those appended since (on every process)."""
        return list(self._rows)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row and make it durable before returning (no-op on processes other than 0)."""
        if self.key not in row:
            raise InputError(f"ResultsLog.append: the row needs a {self.key!r} field; got fields {', '.join(row)}")
        row = dict(row)
        self._rows.append(row)
        self._done.add(row[self.key])
        if self._file is not None:
            self._file.write(dumps(row) + "\n")
            self._flush()
        elif self.writer:  # in a bucket: rewrite the whole object, at most every sync_seconds
            self._unsynced = True
            if time.monotonic() - self._last_sync >= self.sync_seconds:
                self.sync()

    def sync(self) -> None:
        """Make every row durable now (for a file in a bucket: rewrite it; on a disk rows are durable already)."""
        if self._unsynced:
            storage.write_text(self.path, "".join(dumps(row) + "\n" for row in self._rows))
            self._unsynced = False
            self._last_sync = time.monotonic()

    def _flush(self):
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.sync()

    def __enter__(self) -> "ResultsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ends_with_newline(path: epath.Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _interactive() -> bool:
    """A terminal, or a notebook (Jupyter, Colab: an IPython kernel), where a live bar is read, not logged."""
    return (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()) or "ipykernel" in sys.modules


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class Progress:
    """tqdm progress bar plus a plain absl log line every `log_every` items.

    Args:
      total: number of items expected (None if unknown: no ETA).
      desc: label shown on the bar and in the log lines.
      log_every: log a line every this many items (0: never).
      force: show the bar even outside a terminal or a notebook (it is hidden there by default: a bar's carriage
        returns make batch logs unreadable, and the log lines carry the same information). The bar is
        `tqdm.auto`'s: a widget in Jupyter and Colab, text in a terminal.
    """

    def __init__(self, total: int | None = None, desc: str = "", log_every: int = 10, force: bool = False):
        self.total, self.desc, self.log_every = total, desc, log_every
        self.count = 0
        self._start = time.perf_counter()
        show = force or _interactive()
        self._bar = tqdm_auto.tqdm(total=total, desc=desc or None, disable=not show, dynamic_ncols=True)

    @property
    def rate(self) -> float:
        """Items per second since the start."""
        elapsed = time.perf_counter() - self._start
        return self.count / elapsed if elapsed > 0 else 0.0

    def status(self) -> str:
        """'desc: count/total (pct%), rate/s, elapsed, ETA' - the plain log line."""
        elapsed = time.perf_counter() - self._start
        rate = self.rate
        done = f"{self.count}/{self.total} ({100.0 * self.count / self.total:.0f}%)" if self.total else f"{self.count}"
        eta = ""
        if self.total and rate > 0:
            eta = f", ETA {_duration(max(self.total - self.count, 0) / rate)}"
        prefix = f"{self.desc}: " if self.desc else ""
        return f"{prefix}{done}, {rate:.3g}/s, elapsed {_duration(elapsed)}{eta}"

    def update(self, n: int = 1) -> None:
        before = self.count
        self.count += n
        self._bar.update(n)
        if self.log_every and self.count // self.log_every > before // self.log_every:
            logging.info("%s", self.status())

    def close(self) -> None:
        self._bar.close()
        if self.log_every and self.count % self.log_every:  # the last line, unless it was just logged
            logging.info("%s", self.status())

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()



def dumps(obj, **kwargs) -> str:
    """`obj` as strict JSON text: NaN and infinities, which JSON cannot hold, become null (`allow_nan=False`
    guarantees none slips through); other keyword arguments go to `json.dumps` (e.g. `indent`, `default=str`).
    Every writer of results uses it, so any JSON parser reads what zico-jax writes."""
    return json.dumps(_nan_to_none(obj), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj) -> None:
    """`obj` as indented strict JSON at `path` (parent folders created): NaN and infinities as null (`dumps`),
    other non-JSON values as their str()."""
    storage.write_text(path, dumps(obj, indent=2, default=str) + "\n")


def write_csv(path: str | os.PathLike, rows, columns) -> epath.Path:
    """`rows` (mappings) as a CSV table at `path` (parent folders created), replacing any file there.

    One header line (`columns`, in order) and one line per row, through the csv module (RFC 4180 quoting; a
    field missing from a row, None, NaN or an infinity is an empty cell; floats are written as `repr` does,
    which reads back exactly). A reader never sees a half-written table (`storage.write_text`). Returns the
    path. Callers write it on the writer process only (`is_writer`), as for the other results files.
    """
    columns = list(columns)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return storage.write_text(path, text.getvalue())


def _csv_cell(value) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):  # float, numpy floats
        value = float(value)
        return repr(value) if math.isfinite(value) else ""
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple)):
        return dumps(value, sort_keys=True, default=str)
    return str(value)


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj
