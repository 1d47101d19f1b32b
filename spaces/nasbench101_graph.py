"""NAS-Bench-101 cell specs: adjacency + op labels, validation, pruning, the official hash, channel rule, codes.

A spec (Ying et al., ICML 2019; `nasbench/lib/model_spec.py`) is an n x n upper-triangular 0/1 adjacency matrix
(`matrix[i, j] = 1`: vertex i feeds vertex j) and n op labels: 'input' first, 'output' last, the others from
OPS = ('conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3') (the official `available_ops` order, whose indices are
the hash labels). In the benchmark n <= 7 and at most 9 edges, counted after pruning.

Pruning (as `ModelSpec._prune`): vertices not on some input -> output path are deleted with their edges; a spec
whose input cannot reach its output is invalid. Every `NB101Spec` here is pruned and valid.

Canonical string (`str(spec)`): the row-major adjacency bits, then the op labels, '|'-separated:

    0100110001000000010010000010000001000000010000000|input|conv3x3-bn-relu|maxpool3x3|...|output

i.e. `adjacency_rowmajor + '|' + ops` of the NAS-Bench-Suite-Zero CSV. `parse_spec` also reads that CSV's row
form `n_nodes,adjacency_rowmajor,ops`, and prunes, so `str(parse_spec(text))` is canonical.

Code (`encode`, 26 ints, the architecture as data): the 21 upper-triangle bits of the 7 x 7 matrix in row-major
order ((0,1), (0,2), ..., (5,6)), then one code per interior vertex 1..5 (0 = no vertex, 1 = conv3x3-bn-relu,
2 = conv1x1-bn-relu, 3 = maxpool3x3). A pruned spec with n < 7 vertices keeps vertices 0..n-2 in place, its
output moves to 6, and vertices n-1..5 are absent (code 0, no edges): the 7-vertex graph prunes back to it.

`spec_hash` is `graph_util.hash_module` (labels -1 input, -2 output, OPS index otherwise): an md5 fingerprint
invariant under relabelling of the interior vertices, the benchmark's key.

Example:
    >>> s = parse_spec("0100110001000000010010000010000001000000010000000|input|conv3x3-bn-relu|maxpool3x3|"
    ...                "conv3x3-bn-relu|conv3x3-bn-relu|conv1x1-bn-relu|output")
    >>> spec_hash(s)  # as published (NNI's NAS-Bench-101 example; the dataset's first hash)
    '00005c142e6f48ac74fdcf73e3439874'
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Sequence

import numpy as np

from zico_jax.errors import GenotypeError, InputError

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)  # official `available_ops` order: hash labels 0, 1, 2
CONV_KERNEL = {CONV3X3: 3, CONV1X1: 1}
MAX_VERTICES, MAX_EDGES = 7, 9
TRIU = tuple((i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES))  # 21 code bit positions
CODE_LENGTH = len(TRIU) + MAX_VERTICES - 2


@dataclasses.dataclass(frozen=True)
class NB101Spec:
    """A pruned, valid cell: `matrix` (n x n tuple of 0/1 tuples) and `ops` (n labels). `str()` is canonical.
    Build it with `make_spec` / `parse_spec` / `decode_spec`, which validate and prune; the constructor does not."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def array(self) -> np.ndarray:
        return np.array(self.matrix, dtype=np.int64).reshape(self.num_vertices, self.num_vertices)

    @property
    def num_edges(self) -> int:
        return int(self.array.sum())

    def __str__(self) -> str:
        bits = "".join(str(b) for row in self.matrix for b in row)
        return "|".join((bits,) + self.ops)


def _check_and_prune(matrix, ops: Sequence[str], what: str) -> NB101Spec:
    """Validate (shape, 0/1, upper-triangular, labels), prune as ModelSpec, then check the benchmark's limits."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: adjacency must be a square n x n matrix, got shape {m.shape}")
    n = m.shape[0]
    if n < 2:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: expected at least 2 vertices (input, output), got {n}")
    if not np.isin(m, (0, 1)).all():
        raise GenotypeError(f"NAS-Bench-101 spec {what}: adjacency entries must be 0 or 1")
    m = m.astype(np.int64)
    below = [(i, j) for i in range(n) for j in range(i + 1) if m[i, j]]
    if below:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: adjacency must be upper-triangular (a DAG in vertex order); "
                            f"entry {below[0]} on or below the diagonal is 1")
    ops = [str(o) for o in ops]
    if len(ops) != n:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: {len(ops)} op labels for a {n} x {n} adjacency")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: ops must start with 'input' and end with 'output', got "
                            f"{ops[0]!r} ... {ops[-1]!r}")
    for v, op in enumerate(ops[1:-1], start=1):
        if op not in OPS:
            raise GenotypeError(f"NAS-Bench-101 spec {what}: unknown op {op!r} at vertex {v}; expected one of "
                                f"{', '.join(OPS)}")
    keep = _on_input_output_path(m)
    if keep is None:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: the input is not connected to the output")
    m = m[np.ix_(keep, keep)]
    ops = [ops[v] for v in keep]
    if len(ops) > MAX_VERTICES:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: {len(ops)} vertices after pruning; at most {MAX_VERTICES}")
    if m.sum() > MAX_EDGES:
        raise GenotypeError(f"NAS-Bench-101 spec {what}: {int(m.sum())} edges after pruning; at most {MAX_EDGES}")
    return NB101Spec(tuple(tuple(int(b) for b in row) for row in m), tuple(ops))


def _on_input_output_path(m: np.ndarray) -> list[int] | None:
    """Vertices reachable from the input and reaching the output (ModelSpec._prune), or None if disconnected."""
    n = m.shape[0]
    fwd, stack = {0}, [0]
    while stack:
        u = stack.pop()
        for v in range(u + 1, n):
            if m[u, v] and v not in fwd:
                fwd.add(v)
                stack.append(v)
    bwd, stack = {n - 1}, [n - 1]
    while stack:
        u = stack.pop()
        for v in range(u):
            if m[v, u] and v not in bwd:
                bwd.add(v)
                stack.append(v)
    keep = sorted(fwd & bwd)
    return keep if (0 in keep and n - 1 in keep) else None


def make_spec(matrix, ops: Sequence[str]) -> NB101Spec:
    """The pruned spec of an adjacency matrix (nested lists or array) and op labels; GenotypeError if invalid."""
    return _check_and_prune(matrix, ops, f"(matrix with {len(ops)} ops)")


def parse_spec(text: str) -> NB101Spec:
    """Parse `bits|input|op|...|output` (canonical) or the CSV row form `n_nodes,bits,input|op|...|output`."""
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"NAS-Bench-101 spec: expected a string 'adjacency_bits|input|op|...|output', got {text!r}")
    raw = text.strip()
    n_nodes = None
    if "," in raw:
        fields = [f.strip() for f in raw.split(",")]
        if len(fields) != 3 or not fields[0].isdigit():
            raise GenotypeError(f"NAS-Bench-101 spec {text!r}: the CSV row form is 'n_nodes,adjacency_rowmajor,ops'")
        n_nodes, raw = int(fields[0]), fields[1] + "|" + fields[2]
    bits, *ops = raw.split("|")
    if not bits or set(bits) - {"0", "1"}:
        raise GenotypeError(f"NAS-Bench-101 spec {text!r}: the adjacency must be a string of 0/1 digits, got {bits!r}")
    n = int(round(len(bits) ** 0.5))
    if n * n != len(bits):
        raise GenotypeError(f"NAS-Bench-101 spec {text!r}: adjacency of {len(bits)} bits is not square (n * n bits)")
    if n_nodes is not None and n_nodes != n:
        raise GenotypeError(f"NAS-Bench-101 spec {text!r}: n_nodes={n_nodes} but the adjacency is {n} x {n}")
    matrix = np.array([int(b) for b in bits]).reshape(n, n)
    return _check_and_prune(matrix, ops, repr(text))


def spec_hash(spec: NB101Spec) -> str:
    """The official graph hash (`graph_util.hash_module` of `ModelSpec.hash_spec`), the benchmark's key."""
    matrix = spec.array
    labeling = [-1] + [OPS.index(op) for op in spec.ops[1:-1]] + [-2]
    vertices = len(labeling)
    in_edges = matrix.sum(axis=0).tolist()
    out_edges = matrix.sum(axis=1).tolist()
    # Same strings as the official code: str() of (int, int, int) tuples, md5 hex digests, sorted joins.
    hashes = [hashlib.md5(str(h).encode("utf-8")).hexdigest() for h in zip(out_edges, in_edges, labeling)]
    for _ in range(vertices):
        hashes = [
            hashlib.md5((
                "".join(sorted(hashes[w] for w in range(vertices) if matrix[w, v])) + "|"
                + "".join(sorted(hashes[w] for w in range(vertices) if matrix[v, w])) + "|" + hashes[v]
            ).encode("utf-8")).hexdigest()
            for v in range(vertices)
        ]
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def vertex_channels(in_channels: int, out_channels: int, matrix) -> list[int]:
    """Channels of every vertex: `compute_vertex_channels` of `nasbench/lib/model_builder.py`.

    The output's channels are split evenly over the vertices feeding it, the first `out % k` of them (in vertex
    order) getting one more; other vertices take the max of their successors. Raises ValueError where a vertex
    would get 0 channels (out_channels smaller than the output's in-degree)."""
    m = np.asarray(matrix)
    n = m.shape[0]
    ch = [0] * n
    ch[0], ch[n - 1] = in_channels, out_channels
    if n == 2:
        return ch
    k = int(m[1:, n - 1].sum())
    interior, correction = out_channels // k, out_channels % k
    for v in range(1, n - 1):
        if m[v, n - 1]:
            ch[v] = interior + (1 if correction else 0)
            correction -= 1 if correction else 0
    for v in range(n - 3, 0, -1):
        if not m[v, n - 1]:
            for dst in range(v + 1, n - 1):
                if m[v, dst]:
                    ch[v] = max(ch[v], ch[dst])
    if min(ch[1:n - 1]) <= 0:
        raise InputError(f"NAS-Bench-101: {out_channels} output channels cannot be split over {k} vertices")
    return ch


def widths(out_channels: int) -> tuple[int, ...]:
    """Every channel count an interior vertex can have in a cell with `out_channels` outputs (ascending)."""
    return tuple(sorted({out_channels // k + e for k in range(1, MAX_VERTICES - 1)
                         for e in ((0, 1) if out_channels % k else (0,)) if out_channels // k + e > 0}))


# ------------------------------------------------------------------------------------------------ codes


def encode_spec(spec: NB101Spec) -> np.ndarray:
    """The 26-int code (see the module docstring)."""
    n = spec.num_vertices
    pos = list(range(n - 1)) + [MAX_VERTICES - 1]  # vertex v of the spec sits at pos[v] of the 7-vertex graph
    full = np.zeros((MAX_VERTICES, MAX_VERTICES), np.int32)
    full[np.ix_(pos, pos)] = spec.array
    ops = np.zeros(MAX_VERTICES - 2, np.int32)
    for v in range(1, n - 1):
        ops[v - 1] = OPS.index(spec.ops[v]) + 1
    return np.concatenate([np.array([full[i, j] for i, j in TRIU], np.int32), ops])


def decode_spec(code: Sequence[int]) -> NB101Spec:
    """The pruned spec of a code; absent vertices (op code 0) must have no edges."""
    c = np.asarray(code)
    if c.shape != (CODE_LENGTH,) or not np.issubdtype(c.dtype, np.integer):
        raise GenotypeError(f"NAS-Bench-101 code: expected {CODE_LENGTH} integers (21 edge bits, 5 op codes), got "
                            f"{c.tolist() if c.ndim else c!r}")
    bits, opc = c[: len(TRIU)], c[len(TRIU):]
    if not np.isin(bits, (0, 1)).all():
        raise GenotypeError(f"NAS-Bench-101 code {c.tolist()}: the 21 edge entries must be 0 or 1")
    if opc.min() < 0 or opc.max() > len(OPS):
        raise GenotypeError(f"NAS-Bench-101 code {c.tolist()}: op codes must lie in 0..{len(OPS)} (0 = no vertex)")
    full = np.zeros((MAX_VERTICES, MAX_VERTICES), np.int64)
    for (i, j), b in zip(TRIU, bits):
        full[i, j] = b
    present = [0] + [v for v in range(1, MAX_VERTICES - 1) if opc[v - 1]] + [MAX_VERTICES - 1]
    for v in range(1, MAX_VERTICES - 1):
        if not opc[v - 1] and (full[v].any() or full[:, v].any()):
            raise GenotypeError(f"NAS-Bench-101 code {c.tolist()}: vertex {v} has op code 0 (absent) but has edges")
    ops = [INPUT] + [OPS[opc[v - 1] - 1] for v in present[1:-1]] + [OUTPUT]
    return _check_and_prune(full[np.ix_(present, present)], ops, f"code {c.tolist()}")


def code_to_int(code: Sequence[int]) -> int:
    """Pack a code into 31 bits (21 edge bits, then 2 bits per op code): a unique int < 2**31."""
    c = [int(x) for x in code]
    value = 0
    for b in c[: len(TRIU)]:
        value = value << 1 | b
    for o in c[len(TRIU):]:
        value = value << 2 | o
    return value


# ------------------------------------------------------------------------------------------------ sampling


def random_spec(rng: np.random.Generator) -> NB101Spec:
    """The official colab's `random_spec`: uniform 7-vertex upper-triangular matrix and ops, rejected until the
    pruned spec is valid (connected, <= 9 edges). Not uniform over pruned specs: small graphs arise more often."""
    while True:
        matrix = np.triu(rng.integers(0, 2, (MAX_VERTICES, MAX_VERTICES)), 1)
        ops = [INPUT] + [OPS[i] for i in rng.integers(0, len(OPS), MAX_VERTICES - 2)] + [OUTPUT]
        try:
            return make_spec(matrix, ops)
        except GenotypeError:
            continue


def mutate_spec(spec: NB101Spec, rng: np.random.Generator, mutation_rate: float = 1.0) -> NB101Spec:
    """The official colab's `mutate_spec` (regularized evolution): on the spec padded to 7 vertices, flip each
    edge with probability rate / 7 and resample each interior op (to a different op) with probability rate / 5;
    retried until the pruned result is valid and differs from `spec`. Pad vertices get random ops."""
    code = encode_spec(spec)
    full = np.zeros((MAX_VERTICES, MAX_VERTICES), np.int64)
    for (i, j), b in zip(TRIU, code[: len(TRIU)]):
        full[i, j] = b
    base_ops = [OPS[o - 1] if o else OPS[rng.integers(len(OPS))] for o in code[len(TRIU):]]
    while True:
        m = full.copy()
        for i, j in TRIU:
            if rng.random() < mutation_rate / MAX_VERTICES:
                m[i, j] = 1 - m[i, j]
        ops = list(base_ops)
        for v in range(len(ops)):
            if rng.random() < mutation_rate / (MAX_VERTICES - 2):
                ops[v] = [o for o in OPS if o != ops[v]][rng.integers(len(OPS) - 1)]
        try:
            child = make_spec(m, [INPUT] + ops + [OUTPUT])
        except GenotypeError:
            continue
        if child != spec:
            return child
