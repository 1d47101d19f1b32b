"""The Space protocol and the registry of search spaces.

A space is everything the rest of zico-jax knows about a family of networks:

    text --parse--> Genotype --encode--> int code (the architecture as data) --model--> Flax module

plus `layers(g)`: the Conv/Dense layers that exist for a genotype, with their shapes. ZiCo-BC's penalty, FLOPs and
parameter counts all read that one description. Transposed convolutions are listed too (they are compute and
weights), flagged `transposed=True`: the official ZiCo does not count them (see `LayerInfo`).

Spaces are registered by name and built from configs and flags:

    >>> from spaces import get_space
    >>> space = get_space("nats_tss")
    >>> g = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    >>> space.params(g)
    1531546
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from spaces.losses import cross_entropy


class GenotypeError(ValueError):
    """A genotype that does not belong to its space; the message names the offending part."""


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """One Conv or Dense layer of a concrete network (what ZiCo counts, unless `transposed`).

    `path` is the '/'-joined parameter path of the layer's module in the Flax params tree (its weight is
    `path + '/kernel'`). `out_hw` is the output feature-map size (1, 1 for dense layers). `bn` says whether a
    BatchNorm with scale and shift follows it (parameter count only); `bias` whether the layer has a bias.
    `transposed`: a transposed convolution. FLOPs and parameters include it, but ZiCo and ZiCo-BC skip it by
    default: the official `getgrad` counts `nn.Conv2d` and `nn.Linear` modules, and `nn.ConvTranspose2d` is
    neither (`ProxyOptions.count_transposed_conv` includes it).
    """

    path: str
    kind: str  # "conv" | "dense"
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    groups: int = 1
    bn: bool = False
    bias: bool = False
    transposed: bool = False

    @property
    def weight_count(self) -> int:
        return self.kernel_size**2 * self.in_channels // self.groups * self.out_channels

    @property
    def param_count(self) -> int:
        return self.weight_count + (2 * self.out_channels if self.bn else 0) + (self.out_channels if self.bias else 0)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer for one input (the papers' 'FLOPs')."""
        return self.weight_count * self.out_hw[0] * self.out_hw[1]


class Space(abc.ABC):
    """A search space: genotypes, their integer encoding and the Flax network they define.

    `loss(outputs, targets)` is the training loss ZiCo differentiates (the mean over one mini-batch; a plain
    function, so that programs compiled for it are shared), `inputs(xs)` and `targets(xs, labels)` make the
    task's inputs and targets from (N, B, H, W, C) images and (N, B) class labels. Defaults: softmax cross-entropy on the class labels.
    """

    name: str = ""
    loss: Callable = staticmethod(cross_entropy)

    def inputs(self, xs: np.ndarray) -> np.ndarray:
        """The network's inputs made from (N, B, H, W, C) images (default: the images; e.g. a jigsaw task moves
        tiles). Applied before `targets`."""
        return xs

    def targets(self, xs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Targets of the space's task for stacked mini-batches (default: the class labels themselves)."""
        return labels

    @abc.abstractmethod
    def parse(self, text: str) -> Any:
        """Genotype from its official string; raises GenotypeError naming the bad part."""

    @abc.abstractmethod
    def encode(self, genotype) -> np.ndarray:
        """The architecture as data: a fixed-length int array."""

    @abc.abstractmethod
    def decode(self, code: Sequence[int]) -> Any:
        """Inverse of `encode`; raises GenotypeError for an invalid code."""

    @abc.abstractmethod
    def model(self, genotype=None, **options):
        """The Flax network: of one genotype (standalone), or with genotype=None of the whole space, taking the
        code as an input (architecture as data)."""

    @abc.abstractmethod
    def layers(self, genotype) -> list[LayerInfo]:
        """The Conv/Dense layers that exist for `genotype`, in forward order."""

    def enumerate(self) -> Iterator[Any]:
        raise NotImplementedError(f"space {self.name!r} is not finite or cannot be enumerated")

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError(f"space {self.name!r} has no sampler")

    def mutate(self, genotype, rng: np.random.Generator, num_mutations: int = 1):
        """A copy of `genotype` with `num_mutations` random changes (what `zico_jax.search`'s evolution calls)."""
        raise NotImplementedError(f"space {self.name!r} has no mutate(genotype, rng, num_mutations): the "
                                  "evolutionary search needs one (random search only needs sample)")

    def arch_id(self, genotype) -> int:
        """A stable integer naming the architecture; per-candidate init keys are folded from it."""
        raise NotImplementedError

    def params(self, genotype) -> int:
        """All parameters of the standalone network (the benchmarks' convention: weights, biases, BN affine)."""
        return sum(layer.param_count for layer in self.layers(genotype)) + self.extra_params(genotype)

    def extra_params(self, genotype) -> int:
        """Parameters outside Conv/Dense layers and their BNs (e.g. a final BN); spaces override."""
        return 0

    def flops(self, genotype) -> int:
        """Multiply-accumulates of Conv/Dense layers for one input image (the papers' 'FLOPs')."""
        return sum(layer.macs for layer in self.layers(genotype))


_SPACES: dict[str, Callable[..., Space]] = {}


def register_space(name: str):
    """Class decorator: make a space constructible by `get_space(name, **options)`."""

    def wrap(factory):
        if name in _SPACES:
            raise ValueError(f"space {name!r} registered twice")
        _SPACES[name] = factory
        factory.name = name
        return factory

    return wrap


def get_space(name: str, **options) -> Space:
    if name not in _SPACES:
        raise KeyError(f"unknown space {name!r}; registered spaces: {', '.join(sorted(_SPACES))}")
    return _SPACES[name](**options)


def parse_space_options(text: str | None) -> dict[str, Any]:
    """'C=4,N=1' -> {'C': 4, 'N': 1}: values are Python literals where they parse as one, else strings."""
    import ast

    options = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"space options: expected KEY=VALUE items separated by commas, got {item!r}")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = value.strip()
    return options


def space_names() -> list[str]:
    return sorted(_SPACES)
