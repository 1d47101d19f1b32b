"""Zen-NAS / ZiCo ImageNet genotypes: the official block strings (`SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(...)`)
parsed into `Block`s, and the official `smart_round`. Shared by the space (`zico_jax.spaces.zennas`) and its
search mutation (`zico_jax.spaces.zennas_mutation`), which import this module and not each other.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

from zico_jax.spaces.base import GenotypeError

CONV_KERNELS = (1, 3, 5, 7)
RES_EXPANSIONS = (1, 2, 4, 6)
RES_KERNELS = (3, 5, 7)
_CONV_RE = re.compile(r"SuperConvK(\d+)BNRELU")
_RES_RE = re.compile(r"SuperResIDWE(\d+)K(\d+)")
_TOKEN_RE = re.compile(r"([A-Za-z][A-Za-z0-9]*)\(([^()]*)\)")
# The starting network of every official ImageNet search (scripts/ZiCo_NAS_ImageNet_*.sh).
INITIAL_GENOTYPE = ("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
                    "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,2048,1,1)")
# encode(): a fixed-length int array, one row per block, zero rows after the last block.
MAX_BLOCKS = 32
SAMPLE_MAX_STEPS = 8  # sample(): at most this many successive mutations of INITIAL_GENOTYPE
CODE_WIDTH = 8  # kind (1 conv, 2 res), kernel, expansion (0 for conv), in, out, stride, bottleneck (0), sub_layers


def smart_round(x: float, base: int = 8) -> int:
    """The official `global_utils.smart_round` with an explicit base: max(base, base * round(x / base))."""
    return max(base, round(x / float(base)) * base)


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of the string. `expansion` and `bottleneck` are None for SuperConvK{k}BNRELU."""

    kernel: int
    in_channels: int
    out_channels: int
    stride: int
    sub_layers: int
    expansion: Optional[int] = None
    bottleneck: Optional[int] = None

    @property
    def is_res(self) -> bool:
        return self.expansion is not None

    def __str__(self) -> str:
        if self.is_res:
            return (f"SuperResIDWE{self.expansion}K{self.kernel}({self.in_channels},{self.out_channels},"
                    f"{self.stride},{self.bottleneck},{self.sub_layers})")
        return f"SuperConvK{self.kernel}BNRELU({self.in_channels},{self.out_channels},{self.stride},{self.sub_layers})"


@dataclasses.dataclass(frozen=True)
class ZenNASGenotype:
    """The blocks of a network; `str()` is the canonical official string."""

    blocks: tuple[Block, ...]

    def __str__(self) -> str:
        return "".join(str(b) for b in self.blocks)


def _block(name: str, args: str, text: str) -> Block:
    where = f"Zen-NAS genotype {text!r}: block {name}({args})"
    values = []
    for a in args.split(","):
        if not re.fullmatch(r"\s*\d+\s*", a):
            raise GenotypeError(f"{where}: argument {a!r} is not a non-negative integer")
        values.append(int(a))
    if m := _CONV_RE.fullmatch(name):
        kernel, expansion, arity = int(m.group(1)), None, 4
        if kernel not in CONV_KERNELS:
            raise GenotypeError(f"{where}: kernel {kernel}; expected one of {CONV_KERNELS}")
    elif m := _RES_RE.fullmatch(name):
        expansion, kernel, arity = int(m.group(1)), int(m.group(2)), 5
        if expansion not in RES_EXPANSIONS or kernel not in RES_KERNELS:
            raise GenotypeError(f"{where}: expansion {expansion}, kernel {kernel}; expected expansion in "
                                f"{RES_EXPANSIONS} and kernel in {RES_KERNELS}")
    else:
        raise GenotypeError(f"{where}: unknown block type {name!r}; expected SuperConvK{{1,3,5,7}}BNRELU or "
                            f"SuperResIDWE{{1,2,4,6}}K{{3,5,7}}")
    if len(values) != arity:
        expected = "(in, out, stride, bottleneck, sub_layers)" if arity == 5 else "(in, out, stride, sub_layers)"
        raise GenotypeError(f"{where}: {len(values)} arguments; expected {arity} {expected}")
    if any(v <= 0 for v in values):
        raise GenotypeError(f"{where}: every argument must be positive")
    if values[2] not in (1, 2):
        raise GenotypeError(f"{where}: stride {values[2]}; expected 1 or 2")
    if arity == 5:
        cin, cout, stride, btl, subs = values
        return Block(kernel, cin, cout, stride, subs, expansion, btl)
    cin, cout, stride, subs = values
    return Block(kernel, cin, cout, stride, subs)


def parse_genotype(text: str) -> ZenNASGenotype:
    """Parse and validate an official string; errors name the offending block and what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"Zen-NAS genotype: expected a string like 'SuperConvK3BNRELU(3,16,2,1)...', got {text!r}")
    s = text.strip()
    blocks, pos = [], 0
    for m in _TOKEN_RE.finditer(s):
        if m.start() != pos:
            raise GenotypeError(f"Zen-NAS genotype {text!r}: cannot parse {s[pos:m.start()]!r} at character {pos}; "
                                f"expected BlockName(arg,...)")
        blocks.append(_block(m.group(1), m.group(2), text))
        pos = m.end()
    if pos != len(s):
        raise GenotypeError(f"Zen-NAS genotype {text!r}: cannot parse {s[pos:]!r} at character {pos}; "
                            f"expected BlockName(arg,...)")
    if blocks[0].in_channels != 3:
        raise GenotypeError(f"Zen-NAS genotype {text!r}: the first block {blocks[0]} takes {blocks[0].in_channels} "
                            f"channels; expected 3 (the RGB image)")
    for prev, b in zip(blocks, blocks[1:]):
        if b.in_channels != prev.out_channels:
            raise GenotypeError(f"Zen-NAS genotype {text!r}: block {b} takes {b.in_channels} channels but the block "
                                f"before it, {prev}, outputs {prev.out_channels}")
    return ZenNASGenotype(tuple(blocks))


def as_genotype(g) -> ZenNASGenotype:
    """A genotype from itself or its official string."""
    if isinstance(g, ZenNASGenotype):
        return g
    if isinstance(g, str):
        return parse_genotype(g)
    raise GenotypeError(f"Zen-NAS genotype: expected a ZenNASGenotype or its string, got {type(g).__name__}")
