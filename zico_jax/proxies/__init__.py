"""Proxies: ZiCo and ZiCo-BC (`zico`), and the registry that selects proxies by name (`registry`)."""

from zico_jax.proxies.registry import (
    Measurement,
    Proxy,
    ProxyOptions,
    get_proxy,
    parse_proxies,
    proxy_names,
    register_proxy,
)
from zico_jax.proxies.zico import (
    LayerTerms,
    bias_penalty,
    feature_shapes,
    zico,
    zico_bc,
    zico_bc_from_terms,
    zico_layer_terms,
    zico_statistic,
)

__all__ = [
    "LayerTerms", "Measurement", "Proxy", "ProxyOptions", "bias_penalty", "feature_shapes", "get_proxy",
    "parse_proxies", "proxy_names", "register_proxy", "zico", "zico_bc", "zico_bc_from_terms",
    "zico_layer_terms", "zico_statistic",
]
