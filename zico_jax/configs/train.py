"""Config of training a found network (`experiments/train.py`, `zico_jax.train.train`). The defaults are
NAS-Bench-201's CIFAR recipe: SGD, Nesterov momentum 0.9, lr 0.1 with cosine decay to 0 (per step), coupled L2
weight decay 5e-4, batch size 256, 200 epochs, random crop (4-pixel padding) + horizontal flip.

Fields:
  space, space_options   search space name and its constructor options (e.g. {"C": 8, "N": 1} for a small
                         NAS-Bench-201 network); for nats_tss, num_classes and image_size default to the dataset's.
  genotype               the network to train, in the space's string form (required).
  dataset, data_source   cifar10 | cifar100 | imagenet16_120 | imagenet2012; offline (the bundled CIFAR-10 sample:
                         1,000 train images, evaluated on its 1,000 held-out test images) | tfds.
  data_dir               offline: the zico-jax data folder (None: $ZICO_JAX_DATA, else the packaged data); tfds: its
                         data_dir.
  limit_train, limit_eval  keep this many training / evaluation images (None: all): a fixed random subset (the
                         same for every seed; the offline sample is sorted by class); imagenet2012: the first ones.
  num_epochs, num_steps  training length; num_steps, when set, is the total number of steps instead.
  batch_size, eval_batch_size  images per training / evaluation step (the last incomplete training batch of an
                         epoch is dropped).
  learning_rate, momentum, nesterov, weight_decay, label_smoothing
                         optimizer: optax.add_decayed_weights (coupled L2, as PyTorch's SGD weight_decay) then
                         optax.sgd with a cosine decay from learning_rate to 0 over all steps.
  augment, crop_padding  random crop + horizontal flip (CIFAR-style; crop_padding None: image size / 8, i.e. 4 for
                         32x32, 2 for 16x16); imagenet2012 always uses random-resized crop + flip in tf.data.
  seed                   weight init (key(seed)), data order (per epoch) and augmentation (per step).
  output_dir             checkpoints/, metrics.jsonl, summary.json (None: nothing written, no resume).
  log_every              a log line and a metrics row every this many steps.
  eval_every_epochs      evaluate every this many epochs (0: only at the end; the end is always evaluated).
  checkpoint_every, max_to_keep  checkpoint every this many steps (None: every epoch) and at the end; keep the
                         newest max_to_keep.
  compilation_cache      JAX's persistent compilation cache.

Examples:
    # the full NAS-Bench-201 recipe on CIFAR-10 (prepared with `tfds build cifar10`)
    python experiments/train.py --data_source tfds --output_dir runs/train_best \
        --genotype '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    # a few epochs of a small network on the offline sample (proves the loop)
    python experiments/train.py --space_options C=8,N=1 --num_epochs 5 --batch_size 64 --output_dir runs/tiny \
        --genotype '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
"""

import ml_collections

from zico_jax.configs import check_preset, placeholder

PRESETS = ("default",)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    check_preset(preset, PRESETS, "train")
    config = ml_collections.ConfigDict()
    config.space = "nats_tss"
    config.space_options = ml_collections.ConfigDict()
    config.genotype = placeholder(str)
    config.dataset = "cifar10"
    config.data_source = "offline"
    config.data_dir = placeholder(str)
    config.limit_train = placeholder(int)
    config.limit_eval = placeholder(int)
    config.num_epochs = 200
    config.num_steps = placeholder(int)
    config.batch_size = 256
    config.eval_batch_size = 500
    config.learning_rate = 0.1
    config.momentum = 0.9
    config.nesterov = True
    config.weight_decay = 5e-4
    config.label_smoothing = 0.0
    config.augment = True
    config.crop_padding = placeholder(int)
    config.seed = 0
    config.output_dir = placeholder(str)
    config.log_every = 50
    config.eval_every_epochs = 10
    config.checkpoint_every = placeholder(int)
    config.max_to_keep = 2
    config.compilation_cache = True
    config.distributed = False  # jax.distributed.initialize() (multi-host); also $ZICO_JAX_DISTRIBUTED=1
    return config
