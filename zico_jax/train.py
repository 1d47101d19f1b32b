"""Train a found network from scratch: the NAS-Bench-201 recipe by default.

Recipe (the defaults of `experiments/configs/train.py`, NAS-Bench-201's CIFAR setting):
  SGD with Nesterov momentum 0.9, lr 0.1 with per-step cosine decay to 0 over all steps
  (lr_t = 0.05 (1 + cos(pi t / T))), weight decay 5e-4 as *coupled* L2 like PyTorch's `SGD(weight_decay=...)`
  (g <- g + wd * w before the momentum, on every parameter: `optax.add_decayed_weights` chained before
  `optax.sgd`), batch size 256, 200 epochs, softmax cross-entropy; CIFAR augmentation: random crop with 4-pixel
  padding (2 for 16x16 images) filled with black as torchvision pads the uint8 image, then a horizontal flip with
  probability 1/2. BatchNorm tracks PyTorch running statistics (momentum 0.1) in `batch_stats`
  (see `zico_jax.nn.layers.TrainBatchNorm`); evaluation uses them. The last incomplete batch of an epoch is dropped,
  so every step has the same shape (one compile).

Inputs (`config.data_source`):
  * "offline": the CIFAR-10 sample of `zico_jax.data` - its 1,000 "train" images train, its 1,000 held-out "test"
    images evaluate (`limit_train` / `limit_eval` keep a fixed random subset of each, the same for every seed).
  * "tfds": cifar10 / cifar100 / imagenet16_120 loaded into memory through `zico_jax.data`, or imagenet2012
    streamed by tf.data (random-resized crop + flip for training; resize to 256/224 of the crop, centre crop for
    evaluation; ImageNet mean/std). tensorflow_datasets is imported only then.
Data order is a function of (seed, epoch) and augmentation of (seed, step), so a resumed run draws what an
uninterrupted one would (in-memory data exactly; imagenet2012 up to tf.data's own determinism).

Outputs under `output_dir` (optional): `checkpoints/` (orbax CheckpointManager; a rerun resumes from the latest
step, and rows of `metrics.jsonl` past it are dropped), `metrics.jsonl` (train rows every `log_every` steps, eval
rows every `eval_every_epochs` epochs and at the end, appended as they come), `summary.json` (the final numbers).

Example:
    >>> from zico_jax.spaces import get_space
    >>> from zico_jax.configs.train import get_config
    >>> config = get_config(); config.num_steps, config.batch_size, config.limit_train = 30, 32, 128
    >>> summary = train(get_space("nats_tss", C=8, N=1), "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
    ...                 "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|", config)
    >>> summary["steps"]
    30
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from etils import epy

from zico_jax import data as image_data
from zico_jax import storage
from zico_jax.errors import InputError
from zico_jax.from_config import space_from_config
from zico_jax.results import ResultsLog, dumps, read_rows
from zico_jax.runtime import run_environment
from zico_jax.train_data import load_data

with epy.lazy_imports():  # loaded on first use: orbax takes ~0.2 s to import, and scoring never needs it
    import orbax.checkpoint as ocp

# Checkpointed runs must agree on these to resume; anything else (logging, eval cadence) may change.
RESUME_FIELDS = ("dataset", "data_source", "batch_size", "num_epochs", "num_steps", "learning_rate", "momentum",
                 "nesterov", "weight_decay", "label_smoothing", "augment", "seed", "limit_train")


# ------------------------------------------------------------------------------------------------ steps


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The hyperparameters a compiled step depends on. Hashable: the jitted steps below are keyed on
    (model, recipe), so training several networks (or resuming) in one process reuses their programs."""

    learning_rate: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    total_steps: int
    seed: int
    pad: int  # crop padding of the on-device augmentation (0: none)
    fill: tuple[float, ...]  # the normalised value of a black pixel, per channel

    @classmethod
    def of(cls, config, total_steps: int, pad: int, fill) -> "Recipe":
        return cls(float(config.learning_rate), float(config.momentum), bool(config.nesterov),
                   float(config.weight_decay), float(config.label_smoothing), int(total_steps), int(config.seed),
                   int(pad), tuple(float(v) for v in fill))

    def schedule(self):
        return optax.cosine_decay_schedule(self.learning_rate, self.total_steps)

    def optimizer(self) -> optax.GradientTransformation:
        """Coupled L2 weight decay (g + wd * w, as PyTorch's SGD weight_decay), then SGD with (Nesterov) momentum."""
        return optax.chain(optax.add_decayed_weights(self.weight_decay),
                           optax.sgd(self.schedule(), momentum=self.momentum or None, nesterov=self.nesterov))


def augment(key, x, pad: int, fill):
    """Random crop of each image from its `pad`-pixel padding (padded with `fill` per channel), then a horizontal
    flip with probability 1/2: torchvision's RandomCrop(size, padding=pad) + RandomHorizontalFlip()."""
    n, h, w, c = x.shape
    k_crop, k_flip = jax.random.split(key)
    padded = jnp.pad(x - fill, ((0, 0), (pad, pad), (pad, pad), (0, 0))) + fill
    offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)
    crops = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c)))(padded, offsets)
    return jnp.where(jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1)), crops[:, :, ::-1], crops)


@functools.partial(jax.jit, static_argnums=(0, 1), donate_argnums=2)
def train_step(model, recipe: Recipe, state, x, y):
    """One SGD step on (x, y): augmentation keyed by (seed, step), train-mode BN updating `batch_stats`."""
    if recipe.pad:
        # fold 1: key(seed) itself initialises the weights
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(recipe.seed), 1), state["step"])
        x = augment(key, x, recipe.pad, jnp.asarray(recipe.fill, x.dtype))

    def loss_fn(params):
        logits, new = model.apply({"params": params, "batch_stats": state["batch_stats"]}, x, mutable=["batch_stats"])
        labels = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), recipe.label_smoothing)
        return optax.softmax_cross_entropy(logits, labels).mean(), (logits, new.get("batch_stats", {}))

    (loss, (logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = recipe.optimizer().update(grads, state["opt_state"], state["params"])
    state = dict(step=state["step"] + 1, params=optax.apply_updates(state["params"], updates), batch_stats=stats,
                 opt_state=opt_state)
    return state, {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}


@functools.partial(jax.jit, static_argnums=0)
def eval_step(model, params, stats, x, y, valid):
    """Summed loss and correct predictions over the `valid` images, BN in eval mode (running statistics)."""
    logits = model.apply({"params": params, "batch_stats": stats}, x)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(losses * valid), jnp.sum((jnp.argmax(logits, -1) == y) * valid)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _init_variables(model, seed: int, image_shape: tuple[int, ...]):
    x = jnp.zeros((1, *image_shape), jnp.float32)
    params = model.init(jax.random.key(seed), x)["params"]
    shapes = jax.eval_shape(lambda p: model.apply({"params": p}, x, mutable=["batch_stats"])[1], params)
    stats = jax.tree_util.tree_map_with_path(
        lambda path, s: (jnp.ones if path[-1].key == "var" else jnp.zeros)(s.shape, s.dtype),
        shapes.get("batch_stats", {}))
    return params, stats


def init_state(model, recipe: Recipe, image_shape: tuple[int, ...]) -> dict[str, Any]:
    """Weights from key(seed) (params only: the weights ZiCo scored), running statistics at PyTorch's start
    (mean 0, var 1), optimizer state, step 0. The variables come from one cached program (not one per op)."""
    params, stats = _init_variables(model, recipe.seed, tuple(image_shape))
    return dict(step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
                opt_state=recipe.optimizer().init(params))


def evaluate(model, state, data, batch_size: int) -> dict[str, float]:
    """Mean loss and accuracy over the whole evaluation set (the last batch padded to shape and masked)."""
    loss = correct = count = 0.0
    for x, y in data.eval_batches(batch_size):
        n = len(x)
        valid = np.arange(batch_size) < n
        x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), x.dtype)]) if n < batch_size else x
        y = np.concatenate([y, np.zeros(batch_size - n, y.dtype)]) if n < batch_size else y
        l, c = eval_step(model, state["params"], state["batch_stats"], x, y, valid)
        loss, correct, count = loss + float(l), correct + float(c), count + n
    return {"loss": loss / max(count, 1), "accuracy": correct / max(count, 1), "images": int(count)}


# ------------------------------------------------------------------------------------------------ the loop


def train(space, genotype, config, *, output_dir: Optional[str] = None, stop_after: Optional[int] = None,
          data=None) -> dict[str, Any]:
    """Train `genotype` of `space` under `config`; returns the summary (also written to summary.json).

    `output_dir` (default config.output_dir; None: nothing written) holds checkpoints/, metrics.jsonl and
    summary.json, and a rerun into it resumes. `stop_after`: stop (with a checkpoint) once this many steps are
    done, as a time-boxed job would. `data`: an object like `ArrayData` instead of `load_data(config)`.
    """
    if genotype is None or (isinstance(genotype, str) and not genotype.strip()):
        raise InputError("a genotype is required (config.genotype): the found network to train, e.g. "
                         "'|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                         "nor_conv_3x3~2|' for nats_tss")
    g = space.parse(genotype) if isinstance(genotype, str) else genotype
    image_size = space.input_shape(1)[1]
    data = load_data(config, image_size) if data is None else data
    if image_size is not None and tuple(data.image_shape[:2]) != tuple(space.input_shape(1)[1:3]):
        raise InputError(f"{config.dataset} images are {data.image_shape[:2]} but {space!r} expects "
                         f"{space.input_shape(1)[1:3]}; set the space's image_size option to match")
    model = space.model(g)
    total = int(config.num_steps or config.num_epochs * data.steps_per_epoch)
    if total < 1:
        raise InputError(f"nothing to train: num_epochs={config.num_epochs}, num_steps={config.num_steps}")
    pad = (config.crop_padding if config.get("crop_padding") is not None else data.image_shape[0] // 8) \
        if config.augment and config.dataset != "imagenet2012" else 0  # imagenet2012 augments in tf.data
    mean, std = image_data.NORMALIZATION[config.dataset]
    recipe = Recipe.of(config, total, pad, -np.asarray(mean) / np.asarray(std))  # fill: black after normalising
    schedule = recipe.schedule()
    logits, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), jnp.zeros((1, *data.image_shape)))
    if logits.shape[-1] != image_data.NUM_CLASSES[config.dataset]:
        raise InputError(f"the network has {logits.shape[-1]} outputs but {config.dataset} has "
                         f"{image_data.NUM_CLASSES[config.dataset]} classes; set the space's num_classes option")
    state = init_state(model, recipe, tuple(data.image_shape))

    output_dir = output_dir if output_dir is not None else config.get("output_dir")
    out = storage.as_path(output_dir) if output_dir else None
    meta = {"space": repr(space), "genotype": str(g), "total_steps": total,
            **{k: config.get(k) for k in RESUME_FIELDS}}
    manager, start, history, metrics_log = None, 0, [], None  # history: the train rows of metrics.jsonl
    if out is not None:
        manager = ocp.CheckpointManager(storage.absolute(out / "checkpoints"), options=ocp.CheckpointManagerOptions(
            max_to_keep=config.get("max_to_keep", 2), enable_async_checkpointing=False, create=True))
        if manager.latest_step() is not None:
            start = int(manager.latest_step())
            restored = manager.restore(start, args=ocp.args.Composite(state=ocp.args.StandardRestore(state),
                                                                      meta=ocp.args.JsonRestore()))
            diff = {k: (restored.meta.get(k), v) for k, v in meta.items() if restored.meta.get(k) != v}
            if diff:
                raise InputError(f"{out} holds a checkpoint of a different run (checkpointed vs now: {diff}); "
                                 "use another output_dir or remove its checkpoints/")
            # uncommitted arrays, as init_state's: committed ones would miss the cached compiled steps
            state = jax.device_put(jax.device_get(restored.state))
            logging.info("train: resuming from step %d in %s", start, out / "checkpoints")
        history = [r for r in _truncate_jsonl(out / "metrics.jsonl", start) if r["split"] == "train"]
        metrics_log = ResultsLog(out / "metrics.jsonl", key="step", writer=True)

    def save(step):
        if manager is not None and step not in manager.all_steps():
            manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                       meta=ocp.args.JsonSave(meta)))

    def record(row):
        if metrics_log is not None:
            metrics_log.append(row)

    spe, end = data.steps_per_epoch, min(total, stop_after or total)
    every = config.get("checkpoint_every") or spe
    log_every, eval_every = max(1, config.log_every), config.get("eval_every_epochs") or 0
    t0 = window_t = time.perf_counter()
    window, result = [], None
    logging.info("train: %s %s on %s (%d steps/epoch, %d steps), from step %d", space, g, config.dataset, spe,
                 total, start)
    batches = data.batches(start)
    for step in range(start + 1, end + 1):
        x, y = next(batches)
        state, metrics = train_step(model, recipe, state, x, y)
        window.append(metrics)
        if step % log_every == 0 or step == end:
            m = {k: float(np.mean([float(w[k]) for w in window])) for k in window[0]}
            now = time.perf_counter()
            rate = len(window) / (now - window_t)
            row = {"split": "train", "step": step, "epoch": step / spe, **m, "lr": float(schedule(step - 1)),
                   "steps_per_s": rate, "elapsed_s": now - t0}
            record(row)
            history.append(row)
            logging.info("train: step %d/%d (epoch %.2f), loss %.4f, acc %.3f, lr %.4g, %.3g steps/s, ETA %s",
                         step, total, step / spe, m["loss"], m["accuracy"], row["lr"], rate,
                         _duration((total - step) / rate))
            window, window_t = [], now
        if (eval_every and step % (eval_every * spe) == 0) or step == total:
            result = evaluate(model, state, data, config.eval_batch_size)
            record({"split": "eval", "step": step, "epoch": step / spe, **result})
            logging.info("train: eval at step %d: loss %.4f, accuracy %.4f", step, result["loss"], result["accuracy"])
        if step % every == 0 or step == end:
            save(step)
    if result is None and end == total:  # a rerun of a finished run: evaluate its final weights again
        result = evaluate(model, state, data, config.eval_batch_size)
    if manager is not None:
        manager.wait_until_finished()
        manager.close()
        metrics_log.close()
    summary = {"space": repr(space), "genotype": str(g), "params": space.params(g), "dataset": config.dataset,
               "data_source": config.data_source, "steps": end, "total_steps": total, "completed": end == total,
               "epochs": end / spe, "resumed_from": start,
               "first_train_loss": history[0]["loss"] if history else None,
               "final_train_loss": history[-1]["loss"] if history else None,
               "eval": result, "wall_s": time.perf_counter() - t0,
               "config": config.to_dict() if hasattr(config, "to_dict") else dict(config), **run_environment()}
    if out is not None:
        storage.write_text(out / "summary.json", dumps(summary, indent=2, default=str) + "\n")
    summary["state"] = state
    return summary


def _truncate_jsonl(path, step: int) -> list[dict]:
    """Drop rows logged after `step` (written before a kill, redone after resuming); returns the rows kept."""
    if not path.exists():
        return []
    rows = [row for row in read_rows(path) if row["step"] <= step]
    storage.write_text(path, "".join(dumps(row) + "\n" for row in rows))
    return rows


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def train_from_config(config) -> dict[str, Any]:
    """`train` on the space and genotype a config names (zico_jax/configs/train.py); the summary without the
    final state. A missing optional dependency (tensorflow for TFDS) is reported as a bad setting (ValueError)."""
    if not config.get("genotype"):
        raise InputError("config.genotype (--genotype) is required: the found network to train")
    space = space_from_config(config)
    try:
        summary = train(space, config.genotype, config, output_dir=config.get("output_dir"))
    except ImportError as err:
        raise InputError(str(err)) from None
    summary.pop("state")
    return summary

