"""Pareto fronts for score (maximise) vs latency (minimise).

A point a dominates b when a.score >= b.score and a.latency <= b.latency with at least one strict. The front is
every point no other point dominates (equal points do not dominate each other: both stay). Points with a NaN score
or latency are never on the front.

Example:
    >>> pareto_front([(1.0, 5.0), (2.0, 6.0), (0.5, 7.0)])
    [0, 1]
    >>> update_front([["a", 1.0, 5.0]], [["b", 2.0, 4.0]])
    [['b', 2.0, 4.0]]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices (ascending) of the non-dominated (score, latency) points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    valid = ~np.isnan(pts).any(axis=1)
    # sort by latency ascending, then score descending: a point is on the front iff its score beats every
    # earlier point's (ties in both coordinates kept)
    order = sorted(np.flatnonzero(valid), key=lambda i: (pts[i, 1], -pts[i, 0]))
    front, best, best_latency = [], -math.inf, None
    for i in order:
        s, lat = pts[i]
        if s > best:
            front.append(i)
            best, best_latency = s, lat
        elif s == best and lat == best_latency:
            front.append(i)
    return sorted(int(i) for i in front)


def update_front(front: list[list[Any]], new: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The front of `front + new`, for [arch, score, latency, ...] rows; first occurrences of an arch win."""
    rows, seen = [], set()
    for row in list(front) + [list(r) for r in new]:
        if row[0] not in seen:
            seen.add(row[0])
            rows.append(list(row))
    keep = pareto_front([(float(r[1]), float(r[2])) for r in rows]) if rows else []
    return [rows[i] for i in keep]
