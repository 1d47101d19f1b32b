"""Config of the search experiment (`experiments/search.py`): training-free architecture search.

Fields:
  space, space_options   search space and its options (nats_tss: num_classes / image_size default to the dataset's).
  dataset, data_source, data_dir, batch_size, num_batches, beta, feature_map, x64, backend, candidate_batch,
                         compilation_cache
                         the scoring (as in the correlation experiment): the images ZiCo sees and the engine.
  proxy                  the objective: zico | zico_bc | params (params needs no network: analytic).
  mode                   evolution (the ZiCo paper's EA) | random (baseline) | pareto (EA + score-vs-latency front).
  iterations             proposals in all, budget-rejected ones included (paper: 100,000).
  population_size        512 in the paper.
  children_per_round     children proposed and scored per engine call (1: exactly the official sequential loop;
                         k > 1 proposes k children from the same population, see zico_jax/search/evolution.py).
  budgets.flops, budgets.params, budgets.layers, budgets.latency
                         limits (None: none); latency in ms from `latency_table` (default nb201_sd855_gpu: the
                         Galaxy S10's Adreno 640 GPU; unmeasured architectures violate a latency budget).
  latency_resolution     a per-layer table measured at several input sizes (note10_lut: 160..224): which one.
  latency_predictor      a per-layer table: predict the layers it lacks with `fit_predictor(table)` (the
                         ZiCo-BC spaces' conv layers are not OFA's blocks, so note10_lut needs it for them).
  seed                   the search's RNG, the weight init and the batch draw.
  output_dir             search.jsonl, checkpoints/, best.json, summary.md (and pareto.csv).
  checkpoint_every       iterations between orbax checkpoints (also one on SIGTERM and at the end).
  resume                 continue from the latest checkpoint in output_dir (default True).
  groundtruth            benchmark table for the report (None: the space's default where one exists).

Example:
    python -m experiments.search --config.iterations=2000 --config.budgets.latency=10 \
        --config.proxy=zico --config.output_dir=runs/search_sd855
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    placeholder = ml_collections.config_dict.placeholder
    config = ml_collections.ConfigDict()
    config.space = "nats_tss"
    config.space_options = ml_collections.ConfigDict()
    config.dataset = "cifar10"
    config.data_source = "offline"
    config.data_dir = placeholder(str)
    config.groundtruth = placeholder(str)
    config.proxy = "zico"
    config.mode = "evolution"
    config.iterations = 100_000
    config.population_size = 512
    config.children_per_round = 8
    config.budgets = ml_collections.ConfigDict()
    config.budgets.flops = placeholder(float)
    config.budgets.params = placeholder(float)
    config.budgets.layers = placeholder(int)
    config.budgets.latency = placeholder(float)
    config.latency_table = "nb201_sd855_gpu"
    config.latency_resolution = placeholder(int)
    config.latency_predictor = False
    config.batch_size = 128  # the paper's 2 x 128 (Sec. 4.5) and every official script
    config.num_batches = 2
    config.beta = placeholder(float)  # None: the space's default_beta (1; 2 for segmentation)
    config.feature_map = "output"
    config.x64 = False
    config.backend = "auto"
    config.candidate_batch = 8
    config.compilation_cache = True
    config.seed = 0
    config.output_dir = placeholder(str)
    config.checkpoint_every = 1000
    config.resume = True
    config.log_every = 1000
    return config
