"""Config of the ablation experiment (`experiments/ablate.py`): proxies x spaces x datasets (x tasks) x seeds in
one run, one table, one heat map (`zico_jax.ablation`).

Fields:
  cells                  list of "space:dataset" (e.g. "nats_tss:cifar10", "nasbench101:cifar10"),
                         "transnas101_micro:class_scene" / "transnas101_micro:cifar10:class_scene", or dicts
                         {space, dataset, task, space_options, proxies, groundtruth, label} (see zico_jax.ablation).
  proxies                comma-separated proxy names; params and flops are always reported beside them
                         (nwot and zen work on nats_tss only: give other cells their own proxies with a dict cell).
  protocol               "default": num_archs and seeds as set here; "suite_zero": NAS-Bench-Suite-Zero's
                         1,000 random architectures x seeds 0..9 (overrides num_archs and seeds).
  num_archs, seeds       architectures per run and the seeds; seed k draws the architecture sample (arch_seed) and
                         the weight init / mini-batch draw (seed) of run k.
  space_options          constructor options for every cell's space (a dict cell's own options win).
  output_dir             runs go to <output_dir>/<cell>/seed_<k>; ablation.{csv,md}, heatmap.png,
                         scatter_<cell>.png and run.json beside them (required).
  data_source, data_dir, batch_size, num_batches, beta, feature_map, x64, backend, candidate_batch,
  compilation_cache, log_every
                         passed to every correlation run as they are (zico_jax/configs/correlation.py).

Example:
    zico ablate --cells nats_tss:cifar10,nasbench101:cifar10 --proxies zico,zico_bc,synflow \
        --config.num_archs=100 --seeds 0,1,2 --config.output_dir=runs/ablation
    zico ablate --config.protocol=suite_zero --config.output_dir=runs/suite_zero
"""

import ml_collections

from zico_jax.configs import check_preset

PRESETS = ("default",)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    check_preset(preset, PRESETS, "ablate")
    config = ml_collections.ConfigDict()
    config.cells = ["nats_tss:cifar10"]
    config.proxies = "zico,zico_bc,params,flops,synflow,snip,grad_norm,nwot"
    config.protocol = "default"
    config.num_archs = 100
    config.seeds = [0]
    config.space_options = ml_collections.ConfigDict()
    config.output_dir = ml_collections.config_dict.placeholder(str)
    # Scoring settings, the same for every run.
    config.data_source = "offline"
    config.data_dir = ml_collections.config_dict.placeholder(str)
    config.batch_size = 128  # the paper's 2 x 128 (Sec. 4.5) and every official script
    config.num_batches = 2
    config.beta = ml_collections.config_dict.placeholder(float)  # None: each space's default_beta
    config.feature_map = "output"
    config.x64 = False
    config.backend = "auto"
    config.candidate_batch = 8
    config.compilation_cache = True
    config.distributed = False  # jax.distributed.initialize() (multi-host); also $ZICO_JAX_DISTRIBUTED=1
    config.log_every = 25
    return config
