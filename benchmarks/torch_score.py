"""The official eager ZiCo loop as a whole process: `python benchmarks/torch_score.py ARCHS_FILE BATCHES.npz`.

What a PyTorch user runs: import torch, build each NAS-Bench-201 network (PyTorch's default init), and the
official `compute_zico` loop (`torch_reference.torch_zico`) on the mini-batches `BATCHES.npz` holds (xs (N, B, H,
W, C) float32, ys (N, B)), 2 threads. Prints one JSON line per architecture, as it is scored (the benchmark
`throughput.py --end-to-end` times these processes against `zico score`).
"""

import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import TinyNetwork, torch_zico  # noqa: E402


def main(archs_file: str, batches_file: str) -> None:
    torch.set_num_threads(2)
    archs = [line.strip() for line in open(archs_file) if line.strip()]
    with np.load(batches_file) as f:
        xs, ys = f["xs"], f["ys"]
    n, b, h, w, c = xs.shape
    x = torch.from_numpy(np.ascontiguousarray(xs.reshape(n * b, h, w, c).transpose(0, 3, 1, 2)))
    y = torch.from_numpy(ys.reshape(-1).astype(np.int64))
    for arch in archs:
        start = time.perf_counter()
        score = torch_zico(TinyNetwork(arch), x, y, splits=n)
        print(json.dumps({"arch": arch, "zico": score, "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
