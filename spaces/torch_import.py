"""Import PyTorch state dicts into Flax params trees, with shape checks that name the offending key.

A space describes its naming as a mapping {torch_name: (flax_path, kind)}; `kind` says how the tensor's layout
changes: conv weights OIHW -> HWIO, linear weights (out, in) -> (in, out), vectors unchanged. BatchNorm running
statistics are accepted and ignored: ZiCo runs BN in train mode and never reads them.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from zico_jax.errors import InputError
from zico_jax.spaces.base import HasTorchNames

IGNORED_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")

_LAYOUT = {
    "conv": lambda w: np.transpose(w, (2, 3, 1, 0)),
    "linear": lambda w: np.transpose(w, (1, 0)),
    "vector": lambda w: w,
}


class WeightImportError(InputError):
    """A state dict that does not fit the network; the message names the key."""


def import_state_dict(
    names: Mapping[str, tuple[str, str]], state_dict: Mapping[str, np.ndarray], expected_shapes: Mapping[str, tuple]
) -> dict:
    """Build a nested Flax params dict from `state_dict` using `names`.

    Args:
      names: torch name -> (flax path 'a/b/kernel', layout kind in {'conv', 'linear', 'vector'}).
      state_dict: torch name -> array (NumPy or anything `np.asarray` takes).
      expected_shapes: flax path -> shape the network expects.
    """
    missing = sorted(set(names) - set(state_dict))
    if missing:
        raise WeightImportError(f"weights: missing key {missing[0]!r} ({len(missing)} missing in all)")
    unexpected = sorted(k for k in state_dict
                        if k not in names and not k.endswith(IGNORED_SUFFIXES) and k not in ("x", "y"))
    if unexpected:
        raise WeightImportError(f"weights: unexpected key {unexpected[0]!r} for this architecture")
    params: dict = {}
    for torch_name, (path, kind) in names.items():
        value = _LAYOUT[kind](np.asarray(state_dict[torch_name]))
        want = tuple(expected_shapes[path])
        if value.shape != want:
            raise WeightImportError(
                f"weights: {torch_name!r} has shape {tuple(np.asarray(state_dict[torch_name]).shape)} "
                f"(as {path}: {value.shape}), expected {want}"
            )
        node = params
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return params


def load_torch_weights(space, genotype, state_dict: Mapping[str, np.ndarray], dtype=None) -> dict:
    """The standalone network of `genotype` with weights from a PyTorch state dict in the space's naming.

    Expected shapes come from an abstract init of the standalone network (`jax.eval_shape`, no FLOPs).
    """
    if not isinstance(space, HasTorchNames):
        raise WeightImportError(f"weights: space {space.name!r} has no PyTorch naming to import from")
    dtype = dtype or jnp.float32
    model = space.model(genotype, dtype=dtype)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(space.input_shape(1), dtype))["params"]
    expected = {
        "/".join(k.key for k in path): leaf.shape for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]
    }
    params = import_state_dict(space.torch_names(genotype), state_dict, expected)
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
