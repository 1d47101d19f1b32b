"""Independent PyTorch computations of the baseline proxies, for `tests/test_baselines.py`.

Each function follows its reference implementation's mechanics (module hooks, masks, `autograd.grad` with
`create_graph`, `np.linalg.eig`, `slogdet`) on the NAS-Bench-201 `TinyNetwork` of `benchmarks/torch_reference.py`,
so the JAX versions (interception, jvp, eigvalsh) are checked against a different route to the same numbers:

  grad_norm, snip, grasp, fisher, plain, l2_norm, synflow: SamsungLabs/zero-cost-nas `foresight/pruners/measures/`
  jacov: NASLib `jacov.py`;  nwot: BayesWatch/nas-without-training `score_networks.py`;
  zen: idstcv/ZenNAS `ZeroShotProxy/compute_zen_score.py` with AZ-NAS' NB201 `forward_pre_GAP` (stem, cells, lastact).

Inputs are NCHW float64 tensors; every function leaves the network it is given unchanged (it works on a copy).
"""

from __future__ import annotations

import copy
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _layers(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _backward_loss(net, x, y):
    net.train()
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()


def grad_norm(net, x, y):
    net = copy.deepcopy(net)
    _backward_loss(net, x, y)
    return float(sum(m.weight.grad.norm() for m in _layers(net)))


def plain(net, x, y):
    net = copy.deepcopy(net)
    _backward_loss(net, x, y)
    return float(sum((m.weight.grad * m.weight).detach().sum() for m in _layers(net)))


def l2_norm(net, x=None, y=None):
    return float(sum(m.weight.detach().norm() for m in _layers(net)))


def snip(net, x, y):
    """Gradient of a multiplicative all-ones mask on every weight, as zero-cost-nas' `snip_forward_*`."""
    net = copy.deepcopy(net)
    for m in _layers(net):
        m.weight_mask = nn.Parameter(torch.ones_like(m.weight))
        m.weight.requires_grad = False
        if isinstance(m, nn.Conv2d):
            m.forward = types.MethodType(
                lambda self, x: F.conv2d(x, self.weight * self.weight_mask, self.bias, self.stride, self.padding,
                                         self.dilation, self.groups), m)
        else:
            m.forward = types.MethodType(lambda self, x: F.linear(x, self.weight * self.weight_mask, self.bias), m)
    _backward_loss(net, x, y)
    return float(sum(m.weight_mask.grad.abs().sum() for m in _layers(net)))


def grasp(net, x, y):
    net = copy.deepcopy(net)
    net.train()
    weights = [m.weight for m in _layers(net)]
    grad_w = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
    grad_f = torch.autograd.grad(F.cross_entropy(net(x), y), weights, create_graph=True, allow_unused=True)
    z = sum((gw.data * gf).sum() for gw, gf in zip(grad_w, grad_f) if gw is not None)
    net.zero_grad()
    z.backward()
    return float(sum((-m.weight.data * m.weight.grad).sum() for m in _layers(net) if m.weight.grad is not None))


def fisher(net, x, y):
    """Per-channel 0.5 mean_n (sum_hw z dL/dz)^2 at every Conv/Linear output z, broadcast over the channel's
    weights (times weight.shape[1:] elements) and summed."""
    net = copy.deepcopy(net)
    net.train()
    acts, grads = {}, {}

    def hook(module, inputs, output):
        acts[module] = output.detach()
        output.register_hook(lambda g: grads.__setitem__(module, g.detach()))

    for m in _layers(net):
        m.register_forward_hook(hook)
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    total = 0.0
    for m in _layers(net):
        a, g = acts[m], grads[m]
        g_nk = (a * g).sum(dim=list(range(2, a.dim()))) if a.dim() > 2 else a * g
        del_k = g_nk.pow(2).mean(0).mul(0.5).abs()
        total += float((del_k.view(-1, *([1] * (m.weight.dim() - 1))).expand_as(m.weight)).sum())
    return total


def synflow(net, x, y=None):
    """BatchNorm forwards replaced by identity, all state-dict entries made absolute, one all-ones image (double)."""
    net = copy.deepcopy(net).double()
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.forward = types.MethodType(lambda self, x: x, m)
    with torch.no_grad():
        for value in net.state_dict().values():
            value.abs_()
    net.zero_grad()
    torch.sum(net(torch.ones((1, *x.shape[1:]), dtype=torch.float64))).backward()
    return float(sum((m.weight * m.weight.grad).detach().abs().sum() for m in _layers(net)))


def jacov(net, x, y=None, k=1e-5):
    net = copy.deepcopy(net)
    net.train()
    x = x.clone().requires_grad_(True)
    out = net(x)
    out.backward(torch.ones_like(out))
    jac = x.grad.detach().reshape(x.shape[0], -1).numpy()
    v, _ = np.linalg.eig(np.corrcoef(jac))
    return float(np.real(-np.sum(np.log(v + k) + 1.0 / (v + k))))


def nwot(net, x, y=None):
    """Forward hooks on every nn.ReLU: K += c c^T + (1-c)(1-c)^T with c = (input > 0); log|det K|."""
    net = copy.deepcopy(net)
    net.train()
    K = np.zeros((x.shape[0], x.shape[0]))

    def hook(module, inputs, output):
        nonlocal K
        c = (inputs[0].detach().reshape(inputs[0].shape[0], -1) > 0).double()
        K = K + (c @ c.t()).numpy() + ((1.0 - c) @ (1.0 - c.t())).numpy()

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(x)
    return float(np.linalg.slogdet(K)[1])


def _forward_pre_gap(net, x):
    h = net.stem(x)
    for cell in net.cells:
        h = cell(h)
    return net.lastact(h)


def zen(net, x1, x2, mixup_gamma=1e-2, bn_var="running"):
    """Zen-score of `net` AS GIVEN (Gaussian weights already in it, fresh BN running statistics) on x1, x2."""
    net = copy.deepcopy(net)
    net.train()
    batch_var = {}

    def hook(module, inputs, output):
        if module not in batch_var:  # the first (unperturbed) pass: the variance BN normalised x1 with
            batch_var[module] = inputs[0].detach().var(dim=(0, 2, 3), unbiased=False)

    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.register_forward_hook(hook)
    with torch.no_grad():
        out = _forward_pre_gap(net, x1)
        mixup_out = _forward_pre_gap(net, x1 + mixup_gamma * x2)
        score = torch.log(torch.mean(torch.sum(torch.abs(out - mixup_out), dim=[1, 2, 3])))
        for m in bns:
            var = m.running_var if bn_var == "running" else batch_var[m]
            score = score + torch.log(torch.sqrt(torch.mean(var)))
    return float(score)


def state_dict_from_flax(space, genotype, params) -> dict[str, torch.Tensor]:
    """The torch state dict (official names) of Flax `params`: the inverse of `load_torch_weights`' layouts."""
    inverse = {"conv": lambda w: np.transpose(w, (3, 2, 0, 1)), "linear": lambda w: w.T, "vector": lambda w: w}
    out = {}
    for name, (path, kind) in space.torch_names(genotype).items():
        node = params
        for part in path.split("/"):
            node = node[part]
        out[name] = torch.from_numpy(np.array(inverse[kind](np.asarray(node)), copy=True))
    return out
