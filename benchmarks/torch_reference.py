"""A compact PyTorch reference: the NAS-Bench-201 network and the official ZiCo computation.

`TinyNetwork` follows the official NAS-Bench-201 code (`models/cell_searchs` + `cell_infers/tiny_network.py`,
`InferCell`, `ResNetBasicblock`, `ReLUConvBN`, ...) closely enough that its state-dict names are the official
ones, i.e. those of tests/fixtures/zico_nb201:

    stem.0 (conv3x3, no bias), stem.1 (BN)
    cells.{i}.layers.{j}.op.1 (conv), .op.2 (BN)         edge j of cell i, for nor_conv_1x1 / nor_conv_3x3
    cells.{5,11}.conv_a.op.{1,2}, .conv_b.op.{1,2}        the stride-2 ResNet basic blocks
    cells.{5,11}.downsample.1 (conv1x1, no bias)          after AvgPool2d(2, 2)
    lastact.0 (BN), classifier (Linear)

The official network returns (features, logits); this one returns the logits only (`torch_zico` accepts either).

`torch_zico(net, x, y, splits=2)` is the official ZiCo (SLDGroup/ZiCo, `ZeroShotProxy/compute_zico.py`): for each
of `splits` contiguous chunks of the batch a train-mode forward, mean cross-entropy, backward, and the weight
gradients of every Conv2d / Linear collected (`zero_grad` between chunks); then in NumPy, per layer:
mean|g| / std(g, ddof=0) over elements with a non-zero std, summed, natural log, layers with a zero sum skipped.

Example:
    >>> net = TinyNetwork("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    ...                   "skip_connect~2|")
    >>> torch_zico(net, x_nchw, y)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def parse_arch(arch: str) -> list[list[tuple[str, int]]]:
    """'|op~0|+|op~0|op~1|+|...|' -> [[(op, source), ...] per node 1..3]; edge order = reading order."""
    return [[(e.split("~")[0], int(e.split("~")[1])) for e in node.strip("|").split("|")] for node in arch.split("+")]


class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                                nn.BatchNorm2d(c_out))

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class Pooling(nn.Module):
    def __init__(self):
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.op(x)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return Pooling()
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; expected one of {', '.join(OPS)}")


class InferCell(nn.Module):
    """Node j = sum over its incoming edges of op(node_source); the cell's output is the last node."""

    def __init__(self, nodes: list[list[tuple[str, int]]], channels: int):
        super().__init__()
        self.layers = nn.ModuleList()
        self.node_inputs: list[list[tuple[int, int]]] = []  # per node: (layer index, source node)
        for node in nodes:
            self.node_inputs.append([])
            for op, source in node:
                self.node_inputs[-1].append((len(self.layers), source))
                self.layers.append(make_op(op, channels))

    def forward(self, x):
        values = [x]
        for inputs in self.node_inputs:
            values.append(sum(self.layers[layer](values[source]) for layer, source in inputs))
        return values[-1]


class ResNetBasicBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                                        nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False))

    def forward(self, x):
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class TinyNetwork(nn.Module):
    """NAS-Bench-201's network: stem, N cells, block, N cells, block, N cells, BN-ReLU, pool, linear."""

    def __init__(self, arch: str, C: int = 16, N: int = 5, num_classes: int = 10):
        super().__init__()
        nodes = parse_arch(arch)
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        channels = [C] * N + [2 * C] + [2 * C] * N + [4 * C] + [4 * C] * N
        reductions = [False] * N + [True] + [False] * N + [True] + [False] * N
        cells, c_prev = [], C
        for c, reduction in zip(channels, reductions):
            cells.append(ResNetBasicBlock(c_prev, c) if reduction else InferCell(nodes, c))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(x)


def weight_grads(net: nn.Module) -> dict[str, np.ndarray]:
    """Flattened weight gradient of every Conv2d / Linear (zeros where autograd left none)."""
    out = {}
    for name, module in net.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            g = module.weight.grad
            out[name] = (np.zeros(module.weight.numel()) if g is None else g.detach().cpu().reshape(-1).numpy())
    return out


def zico_from_grads(per_split: list[dict[str, np.ndarray]]) -> float:
    """The official statistic over per-split gradient dicts (same keys in each)."""
    total = 0.0
    for name in per_split[0]:
        g = np.array([grads[name] for grads in per_split])  # (splits, elements)
        std = np.std(g, axis=0)
        nonzero = np.nonzero(std)[0]
        mean_abs = np.mean(np.abs(g), axis=0)
        layer_sum = np.sum(mean_abs[nonzero] / std[nonzero])
        if layer_sum != 0:
            total += np.log(layer_sum)
    return float(total)


def torch_zico(net: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: int = 2) -> float:
    """Official ZiCo of `net` on x (M, 3, H, W) and labels y (M,), cut into `splits` contiguous chunks."""
    net.train()
    loss_fn = nn.CrossEntropyLoss()
    per_split = []
    for xb, yb in zip(torch.chunk(x, splits), torch.chunk(y, splits)):
        net.zero_grad()
        out = net(xb)
        logits = out[-1] if isinstance(out, tuple) else out
        loss_fn(logits, yb).backward()
        per_split.append(weight_grads(net))
    net.zero_grad()
    return zico_from_grads(per_split)


def state_dict_numpy(net: nn.Module) -> dict[str, np.ndarray]:
    """The network's state dict as NumPy arrays (for `zico_jax.spaces.torch_import.load_torch_weights`)."""
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def load_fixture(path, dtype=torch.float64) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """A golden case_k.npz: (state dict, x NCHW, y int64) in `dtype`."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    x, y = torch.from_numpy(arrays.pop("x")).to(dtype), torch.from_numpy(arrays.pop("y")).long()
    state = {k: torch.from_numpy(v) for k, v in arrays.items()}
    return state, x, y


def fixture_zico(path, arch: str, dtype=torch.float64) -> float:
    """ZiCo of a golden case computed by this reference (all parameters and buffers must load)."""
    state, x, y = load_fixture(path, dtype)
    net = TinyNetwork(arch)
    result = net.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(f"{path}: missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    return torch_zico(net.to(dtype), x, y)


if __name__ == "__main__":  # check against the golden fixtures
    import json
    import pathlib
    import sys

    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1]
                          / "tests" / "fixtures" / "zico_nb201")
    for case in json.loads((folder / "expected.json").read_text())["cases"]:
        z64 = fixture_zico(folder / case["file"], case["arch"], torch.float64)
        z32 = fixture_zico(folder / case["file"], case["arch"], torch.float32)
        rel = lambda a, b: abs(a - b) / max(abs(b), 1e-12)  # noqa: E731
        g64, g32 = case["zico_float64"], case["zico_float32"]
        print(f"{case['file']}: float64 {z64:.9f} vs golden {g64:.9f} (rel {rel(z64, g64):.1e}); "
              f"float32 {z32:.4f} vs golden float32 {g32:.4f} (rel {rel(z32, g32):.1e})")
