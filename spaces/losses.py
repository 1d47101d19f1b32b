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
