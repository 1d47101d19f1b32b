"""Candidates over devices and hosts: a 1-D `jax.sharding.Mesh` whose one axis splits the candidate batch.

Every process runs the same program on the same list of genotypes (`jax.distributed.initialize()` first on a
multi-host slice); the candidate axis of each batch is sharded over all devices of all hosts with a
`NamedSharding`, the inputs (mini-batches) are replicated, and the per-candidate results are gathered to every
process, of which process 0 writes. Sharding changes where a candidate is computed, never what: a candidate's
weights come from its own key, so scores do not depend on the device count or the grouping.

Example:
    >>> mesh = candidate_mesh()                      # all devices
    >>> codes = shard_candidates(np.zeros((8, 6), np.int32), mesh)
"""

from __future__ import annotations

import os
import socket

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from zico_jax.errors import InputError

AXIS = "candidates"


def candidate_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process) with the axis 'candidates'.

    Built with `Mesh` directly and its axis type named: `jax.make_mesh` defaults to Explicit axes (and, from
    jax 0.12, so does `AbstractMesh`), under which jit with a NamedSharding fails on the reshapes inside the
    networks. `Mesh`'s own default is still Auto in jax 0.10-0.12; naming it keeps that whatever a later
    release defaults to.
    """
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,), axis_types=(AxisType.Auto,))


def candidate_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def shard_candidates(array, mesh: Mesh) -> jax.Array:
    """A global array whose leading (candidate) axis is split over the mesh; every process passes the same
    host array (each process knows every candidate), so this also works across hosts."""
    array = np.asarray(array)
    if array.shape[0] % mesh.size:
        raise InputError(f"candidate batch of {array.shape[0]} does not divide over {mesh.size} devices")
    return jax.make_array_from_callback(array.shape, candidate_sharding(mesh), lambda index: array[index])


def replicate(array, mesh: Mesh) -> jax.Array:
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, replicated(mesh), lambda index: array[index])


def to_host(tree):
    """Gather a (possibly multi-host) sharded result to NumPy on every process."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


DISTRIBUTED_ENV = "ZICO_JAX_DISTRIBUTED"


def initialize_distributed(enabled: bool | None = None) -> None:
    """`jax.distributed.initialize()` for a multi-host run (TPU pod slice, GPU cluster), when asked explicitly.

    enabled=None reads $ZICO_JAX_DISTRIBUTED ("1"/"true" to initialise). Nothing is inferred from the environment (a
    SLURM job or a TPU VM is not necessarily a multi-process run), so a single-host run never waits for a
    coordinator; JAX then detects the process count, index and coordinator where it can (TPU metadata, SLURM, ...),
    or reads them from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID.
    """
    if enabled is None:
        enabled = os.environ.get(DISTRIBUTED_ENV, "").strip().lower() in ("1", "true", "yes")
    if enabled and not jax.distributed.is_initialized():
        jax.distributed.initialize()


def enable_preemption_notice() -> None:
    """Let a preemption notice (SIGTERM) reach `multihost_utils.reached_preemption_sync_point`, which orbax's
    `CheckpointManager.reached_preemption` reads, on a single host too.

    JAX's preemption sync service runs wherever `jax.distributed` is initialised: on a multi-host run it comes with
    `initialize_distributed`. A single-host run gets it from a one-process coordination service on a free localhost
    port. Call it before any computation (as `jax.distributed.initialize`); a no-op when jax.distributed is
    initialised already, and a warning when JAX has computed already in this process (then SIGTERM keeps its
    usual effect). Once it runs, SIGTERM no longer ends the process by itself: the program must poll
    `reached_preemption_sync_point` (the search does, once per round).
    """
    if jax.distributed.is_initialized():
        return
    with socket.socket() as probe:  # a free port: bound, read, released
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=1, process_id=0)
    except RuntimeError as err:  # JAX computed already in this process (a notebook, several commands in one)
        logging.warning("no preemption notice in this process (%s): SIGTERM ends it as usual, and a rerun "
                        "resumes from the last periodic checkpoint", str(err).split(". ")[0])


def is_writer() -> bool:
    """Process 0 writes results; every other process computes and stays silent."""
    return jax.process_index() == 0


def peak_memory_bytes() -> dict[str, int | None]:
    """Peak bytes in use per local device, where the backend reports it (GPU/TPU; None on CPU)."""
    out = {}
    for device in jax.local_devices():
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        out[str(device)] = (stats or {}).get("peak_bytes_in_use")
    return out
