"""What a baseline zero-cost proxy reads from a space's standalone Flax network: `BaselineNetwork`.

The baseline proxies (`zico_jax.proxies.baselines`) need more than the logits: NASWOT the binary codes of every
ReLU, fisher the output of every Conv/Dense layer and its gradient, synflow the network with BatchNorm removed,
Zen-score the pre-global-average-pooling features and every BN's batch statistics. All of it comes from ONE
mechanism, `flax.linen.intercept_methods` wrapped around `model.apply` (`BaselineNetwork.run`): every
`__call__` of a module of `zico_jax.nn.layers` is seen with its path, input and output, and may be changed:

  * `TorchConv` / `TorchDense`: output recorded; with `taps`, a zero tensor taps[path] is added to the output, so
    d loss / d taps[path] is the gradient w.r.t. the layer's output (fisher);
  * `TrainBatchNorm`: input and output recorded; with `no_bn=True` the layer is skipped (identity), as
    zero-cost-nas' `copynet(bn=False)` replaces every BatchNorm's forward with `x -> x` (synflow);
  * `ReLUConvBN`: its input is the input of its ReLU: the ReLU's binary code is `input > 0` (NASWOT).

Scope. The interception sees modules, not functions: a bare `nn.relu` or global pooling inside a space's own
module is invisible to it. Each space therefore declares these sites in its class attribute `activation_sites`
(`zico_jax.spaces.base.Space`): the module paths whose OUTPUT enters such a ReLU (`relu_after`) and the module
whose output, after ReLU, is the pre-GAP feature map (`pre_gap`). NAS-Bench-201 (`nats_tss`) declares them: its
ReLUs are exactly the ReLUConvBN ones and `head/lastact` (BN, ReLU, then GAP). For a space that declares none,
every proxy that reads only logits, gradients, Conv/Dense outputs or BN statistics works (grad_norm, snip,
grasp, fisher, jacov, synflow, plain, l2_norm); nwot and zen raise a ValueError naming the space until its
sites are declared.

Example:
    >>> space = get_space("nats_tss", C=4, N=1, image_size=8)
    >>> net = baseline_network(space, space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"))
    >>> params = net.init(jax.random.key(0))
    >>> logits, rec = net.run(params, jnp.ones((2, 8, 8, 3)))
    >>> sorted(rec.conv_outputs)[:2]
    ['cells_0/edge_0/nor_conv_3x3/conv', 'cells_1/conv_a/conv']
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from zico_jax.errors import InputError
from zico_jax.grads import kernel_leaves
from zico_jax.nn.layers import ReLUConvBN, TorchConv, TorchDense, TrainBatchNorm
from zico_jax.nn.losses import cross_entropy


@dataclasses.dataclass
class Record:
    """What one intercepted forward pass saw, keyed by '/'-joined module path.

    conv_outputs: output of every TorchConv / TorchDense (before the tap is added);
    bn_inputs / bn_outputs: input and output of every TrainBatchNorm (output = input where BN is removed);
    relu_inputs: input of every ReLUConvBN (the pre-activation its ReLU codes).
    """

    conv_outputs: dict[str, jax.Array] = dataclasses.field(default_factory=dict)
    bn_inputs: dict[str, jax.Array] = dataclasses.field(default_factory=dict)
    bn_outputs: dict[str, jax.Array] = dataclasses.field(default_factory=dict)
    relu_inputs: dict[str, jax.Array] = dataclasses.field(default_factory=dict)


jax.tree_util.register_pytree_node(
    Record,
    lambda r: ((r.conv_outputs, r.bn_inputs, r.bn_outputs, r.relu_inputs), None),
    lambda _, children: Record(*children),
)


@dataclasses.dataclass(frozen=True)
class BaselineNetwork:
    """A space's standalone Flax network, as the baseline proxies see it (hashable: pass it as a static argument).

    Attributes:
      model: the Flax module (`space.model(genotype, dtype)`), built from `zico_jax.nn.layers` modules.
      space_name: the registered space name (for error messages).
      input_shape: shape of one input batch of the space, (B, H, W, C) with B = 1.
      relu_after: module paths whose output enters a non-module ReLU (the space's `activation_sites`); None if
        the space does not say (nwot raises).
      pre_gap: module path whose output, after ReLU, is the pre-GAP feature map; None if unknown (zen raises).
      loss: `loss(logits, y)`, mean over the batch (cross-entropy with integer labels by default).
    """

    model: nn.Module
    space_name: str
    input_shape: tuple[int, ...]
    relu_after: Optional[tuple[str, ...]] = None
    pre_gap: Optional[str] = None
    loss: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy

    # -- forward passes
    def init(self, key, dtype=None):
        """Fresh parameters (the space's PyTorch-default init)."""
        dtype = dtype or self.model.dtype
        return self.model.init(key, jnp.zeros(self.input_shape, dtype))["params"]

    def apply(self, params, x) -> jax.Array:
        """Logits, BatchNorm in train mode (each batch normalised with its own statistics)."""
        return self.model.apply({"params": params}, x)

    def run(self, params, x, *, no_bn: bool = False, taps: Optional[Mapping[str, jax.Array]] = None):
        """(logits, Record) of one intercepted forward pass; see the module docstring.

        Args:
          no_bn: skip every TrainBatchNorm (identity), as zero-cost-nas' `bn=False` copies do.
          taps: {Conv/Dense path: array of its output's shape}, added to that layer's output; pass zeros and
            differentiate w.r.t. them to get d loss / d output (paths missing from `taps` get none).
        """
        rec = Record()
        taps = dict(taps or {})

        def interceptor(next_fun, args, kwargs, context):
            mod = context.module
            if context.method_name != "__call__":
                return next_fun(*args, **kwargs)
            path = "/".join(mod.scope.path)
            if isinstance(mod, TrainBatchNorm):
                out = args[0] if no_bn else next_fun(*args, **kwargs)
                rec.bn_inputs[path], rec.bn_outputs[path] = args[0], out
                return out
            if isinstance(mod, ReLUConvBN):
                rec.relu_inputs[path] = args[0]
                return next_fun(*args, **kwargs)
            out = next_fun(*args, **kwargs)
            if isinstance(mod, (TorchConv, TorchDense)):
                rec.conv_outputs[path] = out
                if path in taps:
                    out = out + taps[path]
            return out

        with nn.intercept_methods(interceptor):
            logits = self.model.apply({"params": params}, x)
        return logits, rec

    def apply_no_bn(self, params, x) -> jax.Array:
        """Logits of the network with every BatchNorm removed (identity)."""
        return self.run(params, x, no_bn=True)[0]

    # -- what the proxies read
    def kernels(self, tree) -> dict[str, jax.Array]:
        """{layer path: leaf} of the Conv/Dense weights (leaves named `kernel`) of a params-shaped tree."""
        return kernel_leaves(tree)

    def conv_output_shapes(self, params, x) -> dict[str, jax.ShapeDtypeStruct]:
        """Shapes of every Conv/Dense output for input `x` (abstract pass, no FLOPs): the `taps` to pass."""
        return jax.eval_shape(lambda p, x: self.run(p, x)[1].conv_outputs, params, x)

    def relu_pre_activations(self, params, x) -> list[jax.Array]:
        """The input of every ReLU of the network (train-mode BN): ReLUConvBN inputs and the `relu_after` outputs."""
        if self.relu_after is None:
            raise InputError(
                f"space {self.space_name!r}: its non-module ReLUs are not described; declare them as "
                f"activation_sites['relu_after'] on the space class"
            )
        _, rec = self.run(params, x)
        missing = [p for p in self.relu_after if p not in rec.bn_outputs and p not in rec.conv_outputs]
        if missing:
            raise InputError(f"space {self.space_name!r}: ReLU site {missing[0]!r} is not a BN/Conv/Dense module path")
        outs = {**rec.conv_outputs, **rec.bn_outputs}
        return list(rec.relu_inputs.values()) + [outs[p] for p in self.relu_after]

    def features_pre_gap(self, params, x, no_bn: bool = False) -> tuple[jax.Array, Record]:
        """(feature map before global average pooling, Record): Zen-score's `forward_pre_GAP`."""
        if self.pre_gap is None:
            raise InputError(
                f"space {self.space_name!r}: its pre-GAP feature map is not described; declare it as "
                f"activation_sites['pre_gap'] on the space class"
            )
        _, rec = self.run(params, x, no_bn=no_bn)
        outs = {**rec.conv_outputs, **rec.bn_outputs}
        if self.pre_gap not in outs:
            raise InputError(f"space {self.space_name!r}: pre-GAP site {self.pre_gap!r} is not a BN/Conv/Dense path")
        return jax.nn.relu(outs[self.pre_gap]), rec


def baseline_network(space, genotype, dtype=jnp.float32, loss: Callable = cross_entropy) -> BaselineNetwork:
    """The `BaselineNetwork` of `genotype`'s standalone network in a registered `space` (`space.model(genotype)`),
    with the activation sites the space declares (`space.activation_sites`)."""
    name = getattr(space, "name", "") or type(space).__name__
    sites = space.activation_sites
    relu_after = sites.get("relu_after")
    return BaselineNetwork(
        model=space.model(genotype, dtype=dtype),
        space_name=name,
        input_shape=tuple(space.input_shape(1)),
        relu_after=None if relu_after is None else tuple(relu_after),  # hashable: the network is a static argument
        pre_gap=sites.get("pre_gap"),
        loss=loss,
    )


__all__ = ["BaselineNetwork", "Record", "baseline_network"]
