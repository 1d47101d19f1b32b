"""The fields of every config that scores networks: which space, which images, how ZiCo is taken.

  space, space_options   search space name and its constructor options (NAS-Bench-201's spaces take the head's
                         classes and the image size from the dataset unless set).
  task                   a benchmark task, for spaces that have them (TransNAS-Bench-101: class_scene,
                         class_object, jigsaw, room_layout, autoencoder, normal, segmentsemantic).
  dataset, data_source   cifar10 | cifar100 | imagenet16_120 | imagenet2012; offline (the packaged CIFAR-10
                         sample, or data_dir) | tfds.
  data_dir               data folder (None: $ZICO_JAX_DATA, else the data that ships with zico-jax).
  batch_size, num_batches
                         the mini-batches ZiCo's statistics run over: the paper's 2 x 128 (Sec. 4.5).
  beta, feature_map      ZiCo-BC's beta (None: the space's default_beta: 1, or 2 for segmentation) and whether
                         its H, W, C are the layer's output or input map.
  gradients              "per_batch" (the official ZiCo) or "per_sample" (tape backend).
  count_transposed_conv  also count transposed convolutions (the official code counts Conv2d and Linear only).
  deduplicate            score each class of networks that compute the same function once (NAS-Bench-201: 6,466
                         classes of 15,625 cells); a class shares its first member's random initialisation and
                         scores (`Engine(deduplicate=True)`). Off by default: every network is initialised apart.
  seed                   the weight init and the mini-batch draw.
  x64                    compute in float64.
  backend, candidate_batch, candidate_parallel
                         the engine's backend (auto | tape | supernet), candidates per supernet call, and how the
                         supernet spreads them over devices: shard_map (default; also multi-host) | pmap.
  compilation_cache      JAX's persistent compilation cache ($ZICO_JAX_CACHE, else ~/.cache/zico_jax/xla).
  distributed            jax.distributed.initialize() first (multi-host; also $ZICO_JAX_DISTRIBUTED=1).
"""

import ml_collections

from zico_jax.configs import placeholder


def add_scoring_fields(config: ml_collections.ConfigDict, space: str = "nats_tss") -> ml_collections.ConfigDict:
    config.space = space
    config.space_options = ml_collections.ConfigDict()
    config.task = placeholder(str)
    config.dataset = "cifar10"
    config.data_source = "offline"
    config.data_dir = placeholder(str)
    config.batch_size = 128  # the paper's 2 x 128 (Sec. 4.5) and every official script
    config.num_batches = 2
    config.beta = placeholder(float)  # None: the space's default_beta (1; 2 for segmentation)
    config.feature_map = "output"
    config.gradients = "per_batch"
    config.count_transposed_conv = False
    config.deduplicate = False
    config.seed = 0
    config.x64 = False
    config.backend = "auto"
    config.candidate_batch = 8
    config.candidate_parallel = "shard_map"
    add_runtime_fields(config)
    return config


def add_runtime_fields(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    config.compilation_cache = True
    config.distributed = False  # jax.distributed.initialize() (multi-host); also $ZICO_JAX_DISTRIBUTED=1
    return config
