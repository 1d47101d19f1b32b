"""Config of the correlation experiment (`experiments/correlation.py`, `zico correlate`): rank correlation of
training-free proxies with benchmark accuracy over a sample of architectures.

Fields:
  space, space_options   search space name and its constructor options (e.g. {"C": 4, "N": 1} for a tiny
                         NAS-Bench-201); for nats_tss, num_classes and image_size default to the dataset's.
  task                   TransNAS-Bench-101's task (class_scene, class_object, jigsaw, room_layout, autoencoder,
                         normal, segmentsemantic): the decoder, loss, targets and ground-truth rows.
  dataset, data_source   cifar10 | cifar100 | imagenet16_120; offline (bundled CIFAR-10 sample) | tfds.
  data_dir               data folder (None: $ZICO_JAX_DATA, else the data that ships with zico-jax).
  groundtruth            benchmark table (None: the space's default table in the data folder).
  proxies                comma-separated registered proxy names; params and flops are always reported beside them.
  num_archs, arch_seed   how many architectures (0 or -1: all) and which: the first num_archs of a permutation of
                         the space drawn with np.random.default_rng(arch_seed), so a larger num_archs extends a
                         smaller run's sample.
  batch_size, num_batches, beta, feature_map, seed, x64, backend  (beta None: the space's default_beta)
                         the scoring semantics (seed: weight init and batch draw; x64: float64).
  gradients              "per_batch" (default, the official ZiCo: statistics over the num_batches mini-batch
                         gradients) or "per_sample" (over the num_batches x batch_size per-sample gradients, each
                         sample's BatchNorm statistics those of its mini-batch held fixed; tape backend).
  count_transposed_conv  ZiCo / ZiCo-BC also count transposed convolutions (TransNAS-Bench-101's pixel decoders);
                         off by default, as the official code (it counts nn.Conv2d and nn.Linear only).
  candidate_batch        candidates per device call of the supernet backend (bounds the memory per device).
  compilation_cache      JAX's persistent compilation cache ($ZICO_JAX_CACHE or ~/.cache/zico_jax/xla).
  output_dir             where scores.jsonl, summary.json, summary.md, config.json and scatter.png go (required).
  log_every              a plain progress log line every this many architectures.

Example:
    zico correlate --config.num_archs=100 --config.output_dir=runs/nb201_100
    python experiments/correlation.py --config.num_archs=100 --config.output_dir=runs/nb201_100
"""

import ml_collections

from zico_jax.configs import check_preset, placeholder
from zico_jax.configs.scoring import add_scoring_fields

PRESETS = ("default",)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    check_preset(preset, PRESETS, "correlate")
    config = add_scoring_fields(ml_collections.ConfigDict())
    config.groundtruth = placeholder(str)
    config.proxies = "zico,zico_bc"
    config.num_archs = 1000
    config.arch_seed = 0
    config.output_dir = placeholder(str)
    config.log_every = 25
    return config
