"""The Space protocol and the registry of search spaces.

A space is everything the rest of zico-jax knows about a family of networks:

    text --parse--> Genotype --encode--> int code (the architecture as data) --model--> Flax module

plus `layers(g)`: the Conv/Dense layers that exist for a genotype, with their shapes. ZiCo-BC's penalty, FLOPs and
parameter counts all read that one description. Transposed convolutions are listed too (they are compute and
weights), flagged `transposed=True`: the official ZiCo does not count them (see `LayerInfo`).

Spaces are registered by name and built from configs and flags:

    >>> from zico_jax.spaces import get_space
    >>> space = get_space("nats_tss")
    >>> g = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    ...                 "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    >>> space.params(g)
    1531546
"""

from __future__ import annotations

import abc
import ast
import dataclasses
from typing import Any, Callable, ClassVar, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from zico_jax.errors import GenotypeError, InputError, UnknownNameError
from zico_jax.nn.losses import cross_entropy
from zico_jax.nn.tape_nodes import TapeNode

__all__ = ["GenotypeError", "LayerInfo", "Space", "HasTape", "HasTorchNames", "Mutable", "HasInitialGenotype",
           "HasCanonicalForm",
           "register_space", "get_space", "space_class", "space_names", "parse_space_options"]


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
    task's inputs and targets from (N, B, H, W, C) images and (N, B) class labels. Defaults: softmax cross-entropy on
    the class labels.
    """

    # What the space is, declared here so that nothing outside the space keeps a table keyed by its name:
    name: ClassVar[str] = ""  # set by `register_space`
    loss: Callable = staticmethod(cross_entropy)
    # The task its loss trains: "classification", "detection", "segmentation" or "dense" (TransNAS-Bench-101's).
    task_kind: ClassVar[str] = "classification"
    # ZiCo-BC's beta for the task (the ZiCo-BC paper: 1 for classification and detection, 2 for segmentation).
    default_beta: ClassVar[float] = 1.0
    # The datasets its benchmark trained networks on, each with the constructor options it fixes (e.g. the head's
    # classes and the image size of NAS-Bench-201's networks); images of other datasets are an error.
    datasets: ClassVar[Mapping[str, Mapping[str, Any]]] = {"cifar10": {}}
    # Per dataset, the ground-truth columns a correlation compares against (the last one is the headline); a
    # dataset not listed compares against every column of the benchmark's table.
    groundtruth_columns: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # The benchmark's tasks, for a space whose networks and ground truth depend on one (TransNAS-Bench-101);
    # empty: the space has no `task` option.
    benchmark_tasks: ClassVar[tuple[str, ...]] = ()
    # Architecture descriptors for the bias study: name -> f(space, genotype) (e.g. depth of the cell's longest
    # path, mean width).
    descriptors: ClassVar[Mapping[str, Callable[[Any, Any], float]]] = {}
    # For a space without an accuracy table: the score column the bias study holds fixed instead.
    held_without_accuracy: ClassVar[str | None] = None
    # Activation sites of the NASWOT / Zen-score baselines that are not modules: "relu_after" (module paths whose
    # output passes a functional ReLU) and "pre_gap" (the module before global average pooling).
    activation_sites: ClassVar[Mapping[str, Any]] = {}
    # Whole-network latency tables are measured on this space's networks (NAS-Bench-201's device tables): a search
    # reports the found network's latency from the default table even without a latency budget.
    network_latency_tables: ClassVar[bool] = False
    # The space's name in NASLib (NAS-Bench-Suite-Zero's files), where it has one.
    naslib_name: ClassVar[str | None] = None

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

    @abc.abstractmethod
    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """(batch, H, W, C) of the network's input."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator):
        """A uniformly random genotype."""

    @abc.abstractmethod
    def arch_id(self, genotype) -> int:
        """A stable integer naming the architecture; per-candidate init keys are folded from it."""

    def enumerate(self) -> Iterator[Any]:
        raise NotImplementedError(f"space {self.name!r} is not finite or cannot be enumerated")

    def params(self, genotype) -> int:
        """All parameters of the standalone network (the benchmarks' convention: weights, biases, BN affine)."""
        return sum(layer.param_count for layer in self.layers(genotype)) + self.extra_params(genotype)

    def extra_params(self, genotype) -> int:
        """Parameters outside Conv/Dense layers and their BNs (e.g. a final BN); spaces override."""
        return 0

    def flops(self, genotype) -> int:
        """Multiply-accumulates of Conv/Dense layers for one input image (the papers' 'FLOPs')."""
        return sum(layer.macs for layer in self.layers(genotype))


# ------------------------------------------------------------------------------------------ optional capabilities
# Checked with isinstance (the protocols are runtime-checkable): a space has the capability when it defines the
# method.


@runtime_checkable
class HasTape(Protocol):
    """The standalone network of a genotype as a list of `TapeNode`s: the engine's tape backend (fast on CPU)."""

    def tape(self, genotype, dtype=...) -> list[TapeNode]: ...


@runtime_checkable
class HasTorchNames(Protocol):
    """The PyTorch state-dict name of each weight: importing official weights (`zico_jax.spaces.torch_import`)."""

    def torch_names(self, genotype) -> dict[str, tuple[str, str]]: ...


@runtime_checkable
class Mutable(Protocol):
    """`mutate(genotype, rng[, num_mutations])`: a copy with random changes, what the evolutionary search needs
    (random search only needs `sample`)."""

    def mutate(self, genotype, rng: np.random.Generator, *args): ...


@runtime_checkable
class HasInitialGenotype(Protocol):
    """The network an official search starts its population from (e.g. Zen-NAS's init_plainnet.txt)."""

    def initial_genotype(self): ...


@runtime_checkable
class HasCanonicalForm(Protocol):
    """`canonical(genotype) -> str`, equal for genotypes whose networks compute the same function up to which
    weights sit where (isomorphic cells, edges that cannot reach the output, identity and zero ops), so that the
    engine can score each such class once (`Engine(deduplicate=True)`). Equal forms must imply the same function;
    different forms may still compute the same one (a finer partition is only slower)."""

    def canonical(self, genotype) -> str: ...


# ---------------------------------------------------------------------------------------------------- registry
_SPACES: dict[str, type[Space]] = {}


def register_space(name: str):
    """Class decorator: make a space constructible by `get_space(name, **options)`."""

    def wrap(factory):
        if name in _SPACES:
            raise InputError(f"space {name!r} registered twice")
        _SPACES[name] = factory
        factory.name = name
        return factory

    return wrap


def space_class(name: str) -> type[Space]:
    """The registered class of space `name` (what it declares, before any options); UnknownNameError otherwise."""
    if name not in _SPACES:
        raise UnknownNameError.of("space", name, _SPACES)
    return _SPACES[name]


def get_space(name: str, **options) -> Space:
    """The space registered as `name`, built with its constructor `options`."""
    return space_class(name)(**options)


def parse_space_options(text: str | None) -> dict[str, Any]:
    """'C=4,N=1' -> {'C': 4, 'N': 1}: values are Python literals where they parse as one, else strings."""
    options = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"space options: expected KEY=VALUE items separated by commas, got {item!r}")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = value.strip()
    return options


def space_names() -> list[str]:
    return sorted(_SPACES)
