"""Proxies by name: what configs and flags select (`--proxies zico,zico_bc,params`).

A proxy maps one candidate's `Measurement` (what the engine measured once: per-layer ZiCo terms from the
per-batch gradients, the layer table, analytic counts) to a float. Every proxy of a run reads the same
measurement, so adding `zico_bc` or `params` beside `zico` costs no extra forward or backward pass.

Example:
    >>> @register_proxy("log_params", needs_grads=False)
    ... def log_params(m, options):
    ...     return math.log(m.params)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping

from zico_jax.errors import InputError, UnknownNameError
from zico_jax.proxies.baselines import BASELINES
from zico_jax.proxies.zico import bias_penalty, zico_bc_from_terms
from zico_jax.spaces.base import LayerInfo

FEATURE_MAPS = ("output", "input")


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What the engine measured for one candidate.

    `terms[path]` is ZiCo's log S_l for each layer with a kernel (layers with S_l = 0 are absent; transposed
    convolutions are present, and `counted_terms` drops them unless `ProxyOptions.count_transposed_conv`);
    `layers` maps every Conv/Dense layer of the candidate to its `LayerInfo` (`transposed` flags transposed
    convolutions); `params` and `flops` are the space's analytic counts;
    `baselines[name]` the value of each requested baseline proxy (`zico_jax.proxies.baselines`), which reads the
    network itself rather than ZiCo's gradient statistics.
    """

    terms: Mapping[str, float]
    layers: Mapping[str, LayerInfo]
    params: int
    flops: int
    baselines: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ProxyOptions:
    """Options shared by proxies. `beta`, `feature_map`: ZiCo-BC's weight and which feature map it reads.
    `count_transposed_conv`: ZiCo and ZiCo-BC also count transposed convolutions (`LayerInfo.transposed`). Off by
    default, as the official `getgrad` (it counts `nn.Conv2d` and `nn.Linear` modules; `nn.ConvTranspose2d` is
    neither). FLOPs and params always include them."""

    beta: float = 1.0
    feature_map: str = "output"
    count_transposed_conv: bool = False

    def __post_init__(self):
        if self.feature_map not in FEATURE_MAPS:
            raise InputError(f"feature_map {self.feature_map!r}: expected one of {', '.join(FEATURE_MAPS)}")


@dataclasses.dataclass(frozen=True)
class Proxy:
    """A registered proxy. needs_grads: reads ZiCo's per-layer terms; needs_network: a baseline the engine
    evaluates on the candidate's network (`Measurement.baselines`)."""

    name: str
    fn: Callable[[Measurement, ProxyOptions], float]
    needs_grads: bool
    needs_network: bool = False


_PROXIES: dict[str, Proxy] = {}


def register_proxy(name: str, needs_grads: bool = True, needs_network: bool = False):
    """Decorator: register `fn(measurement, options) -> float` under `name`."""

    def wrap(fn):
        if name in _PROXIES:
            raise InputError(f"proxy {name!r} registered twice")
        _PROXIES[name] = Proxy(name, fn, needs_grads and not needs_network, needs_network)
        return fn

    return wrap


def get_proxy(name: str) -> Proxy:
    if name not in _PROXIES:
        raise UnknownNameError(f"unknown proxy {name!r}; registered proxies: {', '.join(proxy_names())}")
    return _PROXIES[name]


def proxy_names() -> list[str]:
    return sorted(_PROXIES)


def parse_proxies(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'zico,zico_bc' or a sequence -> validated names, in order, without repeats."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        raise InputError(f"no proxy named in {spec!r}; registered proxies: {', '.join(proxy_names())}")
    for n in names:
        get_proxy(n)
    return tuple(names)


def feature_map_size(layer: LayerInfo, feature_map: str) -> tuple[int, int, int]:
    """(H, W, C) ZiCo-BC reads for `layer`: its output map (default) or its input map."""
    if feature_map == "output":
        return (*layer.out_hw, layer.out_channels)
    return (*layer.in_hw, layer.in_channels)


def counted_terms(m: Measurement, options: ProxyOptions = ProxyOptions()) -> dict[str, float]:
    """{path: log S_l} of the layers ZiCo counts: `m.terms` without transposed convolutions (unless
    `options.count_transposed_conv`). A path missing from the layer table is kept."""
    if options.count_transposed_conv:
        return dict(m.terms)
    return {p: t for p, t in m.terms.items() if not getattr(m.layers.get(p), "transposed", False)}


@register_proxy("zico")
def _zico(m: Measurement, options: ProxyOptions) -> float:
    """ZiCo: sum of log S_l over counted layers (`zico_jax.proxies.zico`)."""
    return float(sum(counted_terms(m, options).values()))


@register_proxy("zico_bc")
def _zico_bc(m: Measurement, options: ProxyOptions) -> float:
    """ZiCo-BC: sum over counted layers of log S_l - beta * log(H_l W_l / sqrt(C_l)) (`zico_bc_from_terms`, on the
    measurement's host floats; each layer's H, W, C from the space's layer table, `feature_map_size`)."""
    shapes = {path: feature_map_size(layer, options.feature_map) for path, layer in m.layers.items()}
    return float(zico_bc_from_terms(counted_terms(m, options), shapes, options.beta))


@register_proxy("params", needs_grads=False)
def _params(m: Measurement, options: ProxyOptions) -> float:
    """#Params: all parameters of the standalone network (the benchmark's convention)."""
    return float(m.params)


@register_proxy("flops", needs_grads=False)
def _flops(m: Measurement, options: ProxyOptions) -> float:
    """FLOPs: multiply-accumulates of the Conv/Dense layers for one input image."""
    return float(m.flops)


# The baseline proxies of `zico_jax.proxies.baselines` (their definitions and semantics are there, and its
# `BASELINES` table is the list of them). They are registered here, by name, so that configs and flags select
# them like any other proxy; the engine computes `Measurement.baselines` for those requested.
def _baseline(name: str, m: Measurement, options: ProxyOptions) -> float:
    if name not in m.baselines:
        raise UnknownNameError(f"proxy {name!r}: the measurement holds no value for it (the engine computes baselines "
                               f"only for the proxies it was asked for; it has {sorted(m.baselines)})")
    return float(m.baselines[name])


for _name in BASELINES:
    register_proxy(_name, needs_network=True)(functools.partial(_baseline, _name))

__all__ = ["FEATURE_MAPS", "Measurement", "Proxy", "ProxyOptions", "bias_penalty", "counted_terms",
           "feature_map_size", "get_proxy", "parse_proxies", "proxy_names", "register_proxy"]
