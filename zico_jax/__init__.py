"""zico-jax: training-free neural architecture search with ZiCo and ZiCo-BC, in JAX/Flax.

ZiCo (Li et al., ICLR 2023) scores an untrained network by its per-layer gradient statistics over N mini-batches:

    ZiCo = sum_l log( sum_{theta in layer l} mean_n |g_n(theta)| / std_n g_n(theta) )

and ZiCo-BC (ICCV 2023 workshops) corrects its bias towards deep, narrow networks:

    ZiCo-BC = ZiCo - beta * sum_l log( H_l W_l / sqrt(C_l) ).

    >>> import zico_jax as zj
    >>> space = zj.get_space("nats_tss")
    >>> x, y = zj.load_images("cifar10")
    >>> xs, ys = zj.make_batches(x, y, num_batches=2, batch_size=128, seed=0)
    >>> engine = zj.Engine(space, xs, ys, proxies=("zico", "zico_bc"))
    >>> [r.scores for r in engine.score(["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"
    ...                                  "nor_conv_3x3~1|skip_connect~2|"])]

The public API, smallest piece first: `per_batch_grads` (vmap(grad) over mini-batches) -> `zico_statistic` /
`zico_layer_terms` -> `zico` / `zico_bc` for any flax model -> `Engine` for the candidates of a search space.
Whole experiments are their modules' `run_*(config)` (`zico_jax.correlation.run_correlation`,
`zico_jax.search.run_search_from_config`, ...; configs in `zico_jax.configs`), left out of this namespace so that
`import zico_jax` does not load plotting, progress bars and checkpointing. Every other module is reachable as
`zico_jax.<module>`; names not listed here are helpers.
"""

from zico_jax.data import batches_from_arrays, load_images, make_batches
from zico_jax.engine import CandidateScore, Engine
from zico_jax.errors import DataNotFoundError, GenotypeError, InputError, UnknownNameError, ZicoError
from zico_jax.grads import per_batch_grads, per_sample_grads
from zico_jax.groundtruth import GroundTruth, load_groundtruth
from zico_jax.latency import get_latency_table
from zico_jax.metrics import kendall_tau, rank_correlations, spearman_rho, top_k_precision
from zico_jax.proxies import (
    ProxyOptions,
    get_proxy,
    proxy_names,
    register_proxy,
    zico,
    zico_bc,
    zico_layer_terms,
    zico_statistic,
)
from zico_jax.spaces import LayerInfo, Space, get_space, register_space, space_names
from zico_jax.version import __version__

__all__ = [
    "__version__",
    # search spaces
    "Space", "LayerInfo", "get_space", "register_space", "space_names",
    # gradients and the proxy
    "per_batch_grads", "per_sample_grads", "zico_statistic", "zico_layer_terms", "zico", "zico_bc",
    # proxies by name, and the engine that scores candidates
    "ProxyOptions", "register_proxy", "get_proxy", "proxy_names", "Engine", "CandidateScore",
    # data, ground truth, statistics, latency
    "load_images", "make_batches", "batches_from_arrays", "GroundTruth", "load_groundtruth", "kendall_tau",
    "spearman_rho", "top_k_precision", "rank_correlations", "get_latency_table",
    # errors
    "ZicoError", "InputError", "UnknownNameError", "GenotypeError", "DataNotFoundError",
]
