"""zico-jax: training-free neural architecture search with ZiCo and ZiCo-BC, in JAX/Flax.

    >>> import zico_jax as zj
    >>> space = zj.get_space("nats_tss")
    >>> x, y = zj.load_images("cifar10")
    >>> xs, ys = zj.make_batches(x, y, num_batches=2, batch_size=128, seed=0)
    >>> engine = zj.Engine(space, xs, ys, proxies=("zico", "zico_bc"))
    >>> [r.scores for r in engine.score(["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"
    ...                                  "nor_conv_3x3~1|skip_connect~2|"])]

The pieces, smallest first: `per_batch_grads` (vmap(grad) over mini-batches) -> `zico_statistic` /
`zico_layer_terms` -> `zico` / `zico_bc` for any flax model -> `Engine` for the candidates of a search space ->
`run_correlation` against benchmark ground truth.
"""

from zico_jax.data import (
    DataNotFoundError,
    batches_from_arrays,
    load_images,
    load_inputs_npz,
    make_batches,
    resize_batches,
)
from zico_jax.engine import CandidateScore, Engine
from zico_jax.grads import classification_loss, cross_entropy, kernel_leaves, looped_grads, per_batch_grads
from zico_jax.groundtruth import GroundTruth, groundtruth_spaces, load_groundtruth, load_nb201, load_table
from zico_jax.latency import (
    LayerKey,
    export_layer_list,
    fit_predictor,
    get_latency_table,
    latency_table_names,
    load_layer_table,
    load_network_table,
)
from zico_jax.metrics import kendall_tau, rank_correlations, spearman_rho, top_k_precision
from zico_jax.proxies import (
    LayerTerms,
    Measurement,
    ProxyOptions,
    bias_penalty,
    feature_shapes,
    get_proxy,
    parse_proxies,
    proxy_names,
    register_proxy,
    zico,
    zico_bc,
    zico_bc_from_terms,
    zico_layer_terms,
    zico_statistic,
)
from zico_jax.spaces import GenotypeError, LayerInfo, Space, get_space, parse_space_options, register_space, space_names
from zico_jax.version import __version__

__all__ = [
    # spaces
    "GenotypeError", "LayerInfo", "Space", "get_space", "parse_space_options", "register_space", "space_names",
    # gradients and the proxy
    "per_batch_grads", "looped_grads", "classification_loss", "cross_entropy", "kernel_leaves",
    "LayerTerms", "zico_layer_terms", "zico_statistic", "bias_penalty", "zico_bc_from_terms", "feature_shapes",
    "zico", "zico_bc",
    # proxies by name and the engine
    "Measurement", "ProxyOptions", "register_proxy", "get_proxy", "proxy_names", "parse_proxies",
    "Engine", "CandidateScore",
    # data, ground truth, statistics
    "DataNotFoundError", "load_images", "make_batches", "batches_from_arrays", "load_inputs_npz", "resize_batches",
    "GroundTruth", "load_groundtruth", "groundtruth_spaces", "load_nb201", "load_table", "kendall_tau", "spearman_rho", "top_k_precision",
    "rank_correlations",
    # latency tables (whole-network, per-layer, fitted predictor)
    "get_latency_table", "latency_table_names", "load_network_table", "load_layer_table", "export_layer_list",
    "fit_predictor", "LayerKey",
]
