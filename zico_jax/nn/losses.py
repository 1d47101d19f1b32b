"""Training losses of the spaces' tasks: what ZiCo differentiates. Each is the mean over one mini-batch.

Plain module-level functions (hashable and stable), so compiled programs keyed by the loss are shared.

Example:
    >>> import jax.numpy as jnp
    >>> float(cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3])))  # log(4)
    1.3862943649291992
"""

from __future__ import annotations

import jax
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over the batch (PyTorch's `nn.CrossEntropyLoss()` default reduction)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def sigmoid_focal_loss(logits: jax.Array, targets: jax.Array, alpha: float = 0.25, gamma: float = 2.0) -> jax.Array:
    """Sigmoid focal loss (Lin et al., RetinaNet; EfficientDet's class loss), summed over every element and
    normalised by the number of positive anchors:

        p = sigmoid(z),  p_t = p t + (1 - p)(1 - t),  alpha_t = alpha t + (1 - alpha)(1 - t)
        FL = -alpha_t (1 - p_t)^gamma log(p_t)
        loss = sum FL / max(1, #positive anchors)

    `logits` and `targets` (one-hot, all zeros for a background anchor) are (..., anchors, K); an anchor is
    positive when its target row sums to > 0. -log(p_t) is computed as the stable binary cross-entropy with logits
    max(z, 0) - z t + log(1 + exp(-|z|)).

    >>> import jax.numpy as jnp
    >>> round(float(sigmoid_focal_loss(jnp.zeros((1, 1)), jnp.ones((1, 1)))), 6)  # 0.25 * 0.5**2 * log 2
    0.043322
    """
    targets = targets.astype(logits.dtype)
    p = jax.nn.sigmoid(logits)
    ce = jax.numpy.maximum(logits, 0) - logits * targets + jax.numpy.log1p(jax.numpy.exp(-jax.numpy.abs(logits)))
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    positives = (targets.sum(-1) > 0).sum()
    return (alpha_t * (1 - p_t) ** gamma * ce).sum() / jax.numpy.maximum(positives, 1)


def huber(x: jax.Array, delta: float) -> jax.Array:
    """Elementwise Huber (smooth-L1) loss: x^2 / 2 where |x| < delta, else delta (|x| - delta / 2)."""
    a = jax.numpy.abs(x)
    return jax.numpy.where(a < delta, 0.5 * x * x, delta * (a - 0.5 * delta))


BOX_LOSS_WEIGHT = 50.0  # EfficientDet's box_loss_weight
BOX_HUBER_DELTA = 0.1  # EfficientDet's delta


def detection_loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """EfficientDet's training loss on (..., anchors, K + 4) outputs and targets (K class logits / one-hot
    classes, then 4 box offsets per anchor):

        loss = FL(z, t) / max(1, P) + 50 * sum_{positive anchors} huber_0.1(box - box_target) / max(1, 4 P)

    with FL the sigmoid focal loss (alpha 0.25, gamma 2; `sigmoid_focal_loss`) and P the number of positive
    anchors (a non-zero one-hot row): the box term only counts anchors that hold an object.
    """
    k = outputs.shape[-1] - 4
    cls_targets = targets[..., :k]
    positive = (cls_targets.sum(-1, keepdims=True) > 0).astype(outputs.dtype)
    box = huber(outputs[..., k:] - targets[..., k:].astype(outputs.dtype), BOX_HUBER_DELTA) * positive
    normaliser = jax.numpy.maximum(4 * positive.sum(), 1)
    return sigmoid_focal_loss(outputs[..., :k], cls_targets) + BOX_LOSS_WEIGHT * box.sum() / normaliser


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Pixel-wise softmax cross-entropy on (B, H, W, K) logits and (B, H, W) integer labels:

        loss = -(1 / |V|) sum_{pixels i in V} log softmax(z_i)[y_i],   V = {i : 0 <= y_i < K}

    i.e. PyTorch's `nn.CrossEntropyLoss(ignore_index=255)` (Cityscapes' void label): pixels whose label lies
    outside 0..K-1 are ignored; the mean is over the others (0 when there are none).

    >>> import jax.numpy as jnp
    >>> round(float(pixel_cross_entropy(jnp.zeros((1, 2, 2, 4)), jnp.array([[[0, 1], [255, 3]]]))), 6)  # log 4
    1.386294
    """
    k = logits.shape[-1]
    valid = (labels >= 0) & (labels < k)
    per_pixel = optax.softmax_cross_entropy_with_integer_labels(logits, jax.numpy.where(valid, labels, 0))
    return jax.numpy.where(valid, per_pixel, 0).sum() / jax.numpy.maximum(valid.sum(), 1)
