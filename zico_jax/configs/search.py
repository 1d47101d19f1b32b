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
  checkpoint_every       iterations between orbax checkpoints (also one at a preemption notice and at the end).
  preemption_notice      on SIGTERM (a preemptible VM's notice), checkpoint the round and stop with exit status 143,
                         every host at the same round (orbax + JAX's preemption sync service; on a single host
                         `zico search` starts a one-process service for it). False: SIGTERM just ends the process.
  resume                 continue from the latest checkpoint in output_dir (default True).
  groundtruth            benchmark table for the report (None: the space's default where one exists).

Presets (`--config=NAME`, or `--config=experiments/configs/search.py:NAME`; `get_config()` / no NAME is "default",
the config above):
  zico_imagenet_450m, zico_imagenet_600m, zico_imagenet_1g
                         the three official ZiCo ImageNet searches (SLDGroup/ZiCo scripts/ZiCo_NAS_ImageNet_flops
                         {450M,600M,1G}.sh): see OFFICIAL_IMAGENET_SEARCHES below for every flag and where it went.

Example:
    zico search --config.iterations=2000 --config.budgets.latency=10 --config.proxy=zico \
        --config.output_dir=runs/search_sd855
    zico search --config=zico_imagenet_450m --config.data_dir=/data/tfds --config.output_dir=runs/zico_450m
    python experiments/search.py --config=experiments/configs/search.py:zico_imagenet_450m \
        --config.data_dir=/data/tfds --config.output_dir=runs/zico_450m
"""

import ml_collections

from zico_jax.configs import check_preset, placeholder
from zico_jax.configs.scoring import add_scoring_fields

# The official ImageNet searches, flag by flag. Each script (SLDGroup/ZiCo, scripts/ZiCo_NAS_ImageNet_flops*.sh) runs
#   python evolution_search.py --gpu 0 --zero_shot_score ZiCo --search_space SearchSpace/search_space_IDW_fixfc.py
#     --budget_flops ${budget_flops} --max_layers ${max_layers} --batch_size 128 --input_image_size 224
#     --plainnet_struct_txt init_plainnet.txt --num_classes 1000 --evolution_max_iter 100000
#     --population_size 512 --save_dir ... --dataset imagenet-1k --datapath /dataset/imagenet/
# with (budget_flops, max_layers) = (450e6, 14) in ZiCo_NAS_ImageNet_flops450M.sh, (600e6, 14) in
# ZiCo_NAS_ImageNet_flops600M.sh and (1000e6, 16) in ZiCo_NAS_ImageNet_flops1G.sh, and the defaults of
# evolution_search.py's other flags: --maxbatch 2 (mini-batches of ZiCo), --budget_model_size / --budget_latency
# None, --gamma (unused by ZiCo). Here:
#   --zero_shot_score ZiCo            proxy "zico"
#   --search_space search_space_IDW_fixfc.py, init_plainnet.txt
#                                     space "zennas_imagenet" (its mutation is that file's gen_search_space; its
#                                     initial_genotype() is the script's init_plainnet.txt), scored with
#                                     residual=False, se=False: compute_nas_score builds no_reslink=True, no SE
#   --num_classes 1000, --input_image_size 224
#                                     space_options num_classes=1000, image_size=224
#   --dataset imagenet-1k             dataset "imagenet2012" (tfds), training split, data_source "tfds"
#   --batch_size 128, --maxbatch 2    batch_size 128, num_batches 2
#   --evolution_max_iter 100000       iterations 100_000
#   --population_size 512             population_size 512
#   (the loop: one child per iteration)  children_per_round 1 (the exact sequential official loop)
#   --budget_flops                    budgets.flops (the official get_FLOPs of the network with residual links)
#   --max_layers                      budgets.layers (get_num_layers: sub_layers summed over all blocks)
#   --budget_model_size (not set)     budgets.params None (when set: get_model_size WITH residual links)
#   --budget_latency (not set)        budgets.latency None
OFFICIAL_IMAGENET_SEARCHES = {
    "zico_imagenet_450m": dict(script="scripts/ZiCo_NAS_ImageNet_flops450M.sh", flops=450e6, layers=14),
    "zico_imagenet_600m": dict(script="scripts/ZiCo_NAS_ImageNet_flops600M.sh", flops=600e6, layers=14),
    "zico_imagenet_1g": dict(script="scripts/ZiCo_NAS_ImageNet_flops1G.sh", flops=1000e6, layers=16),
}
PRESETS = ("default", *OFFICIAL_IMAGENET_SEARCHES)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    """The search config; `preset` (`--config=NAME`, or the text after ':' in --config=FILE:NAME): one of PRESETS
    (an unknown name: UnknownNameError)."""
    name = check_preset(preset, PRESETS, "search")
    config = _default_config()
    if name in OFFICIAL_IMAGENET_SEARCHES:
        official = OFFICIAL_IMAGENET_SEARCHES[name]
        config.space = "zennas_imagenet"
        config.space_options = ml_collections.ConfigDict(
            dict(residual=False, se=False, num_classes=1000, image_size=224))
        config.dataset = "imagenet2012"
        config.data_source = "tfds"
        config.proxy = "zico"
        config.mode = "evolution"
        config.iterations = 100_000
        config.population_size = 512
        config.children_per_round = 1
        config.batch_size = 128
        config.num_batches = 2
        config.budgets.flops = official["flops"]
        config.budgets.layers = official["layers"]
        config.budgets.params = None
        config.budgets.latency = None
    return config


def _default_config() -> ml_collections.ConfigDict:
    config = add_scoring_fields(ml_collections.ConfigDict())
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
    config.output_dir = placeholder(str)
    config.checkpoint_every = 1000
    config.resume = True
    config.preemption_notice = True
    config.log_every = 1000
    return config
