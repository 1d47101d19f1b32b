"""The errors zico-jax raises on purpose for bad input; everything else is a bug and keeps its traceback.

Every command (`zico ...`, `python experiments/X.py`) prints a `ZicoError` as ONE line, `zico <command>: error:
<message>`, and exits with status 2; the message names the input and what was expected. Each class also derives
from the built-in exception callers would catch without knowing zico-jax (`ValueError`, `KeyError`,
`FileNotFoundError`).

    >>> from zico_jax.errors import UnknownNameError
    >>> str(UnknownNameError.of("space", "nats_tts", ["nats_tss", "nats_sss"]))
    "unknown space 'nats_tts'; did you mean nats_tss? (registered: nats_sss, nats_tss)"
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["ZicoError", "InputError", "UnknownNameError", "GenotypeError", "DataNotFoundError", "closest"]


class ZicoError(Exception):
    """Base of every bad-input error: its message is one line naming the input and what was expected."""


class InputError(ZicoError, ValueError):
    """A setting, option, argument or file content with a bad value."""


class UnknownNameError(InputError, KeyError):
    """A name that is not registered (space, proxy, preset, config field, latency table, ...)."""

    __str__ = Exception.__str__  # KeyError would quote the message

    @classmethod
    def of(cls, kind: str, name: str, valid: Iterable[str]) -> "UnknownNameError":
        valid = sorted(valid)
        near = closest(name, valid)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        return cls(f"unknown {kind} {name!r}{hint} (registered: {', '.join(valid)})")


class GenotypeError(InputError):
    """A genotype that does not belong to its space; the message names the offending part."""


class DataNotFoundError(ZicoError, FileNotFoundError):
    """A data file or folder that is not where it was looked for; the message says where and how to get it."""


def closest(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to a misspelt one (difflib's ratio >= 0.6), best first."""
    return difflib.get_close_matches(name, list(valid), n=n)
