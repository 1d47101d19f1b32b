"""Candidates sharded over 8 virtual CPU devices score exactly as on one device, by shard_map and by pmap (a
subprocess: the device count is fixed when jax starts)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    import numpy as np
    sys.path.insert(0, "tests")
    from conftest import tiny_batches
    from zico_jax.spaces import get_space
    from zico_jax.engine import Engine
    from zico_jax.sharding import candidate_mesh

    assert jax.device_count() == 8, jax.devices()
    space = get_space("nats_tss", C=4, N=1, image_size=8)
    xs, ys = tiny_batches()
    rng = np.random.default_rng(7)
    archs = [str(space.sample(rng)) for _ in range(8)]
    out = {}
    for name, devices, batch, parallel in [("one", 1, 8, "shard_map"), ("two", 2, 4, "shard_map"),
                                           ("eight", 8, 8, "shard_map"), ("pmap", 8, 8, "pmap")]:
        engine = Engine(space, xs, ys, ("zico", "zico_bc"), seed=11, backend="supernet",
                        mesh=candidate_mesh(jax.devices()[:devices]), candidate_batch=batch,
                        candidate_parallel=parallel)
        out[name] = [r.scores for r in engine.score(archs)]
    print(json.dumps(out))
""")


def test_sharded_scores_equal_single_device_scores():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for proxy in ("zico", "zico_bc"):
        one = np.array([s[proxy] for s in out["one"]])
        assert len(set(one.round(6))) == 8  # eight different candidates
        np.testing.assert_array_equal(one, [s[proxy] for s in out["eight"]])
        np.testing.assert_array_equal(one, [s[proxy] for s in out["two"]])  # another batch shape
        np.testing.assert_array_equal(one, [s[proxy] for s in out["pmap"]])  # jax.pmap over the 8 devices
    # (that the supernet program scores as the tape and the standalone network do: tests/test_engine.py)


def test_distributed_initialisation_is_explicit(monkeypatch):
    """jax.distributed.initialize() runs only when asked ($ZICO_JAX_DISTRIBUTED or an explicit True), never because
    the environment looks like a cluster (a SLURM job id, a coordinator address)."""
    from zico_jax import sharding

    calls = []
    monkeypatch.setattr(sharding.jax.distributed, "initialize", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(sharding.jax.distributed, "is_initialized", lambda: False)
    monkeypatch.delenv(sharding.DISTRIBUTED_ENV, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
    sharding.initialize_distributed()
    assert calls == []
    monkeypatch.setenv(sharding.DISTRIBUTED_ENV, "1")
    sharding.initialize_distributed()
    assert calls == [1]
    monkeypatch.setenv(sharding.DISTRIBUTED_ENV, "0")
    sharding.initialize_distributed(True)
    assert calls == [1, 1]


def test_candidate_mesh_axis_is_auto():
    """The candidate axis is Auto whatever the jax release defaults to (jax.make_mesh and, from 0.12, AbstractMesh
    default to Explicit, under which the networks' reshapes fail to partition)."""
    from jax.sharding import AxisType

    from zico_jax.sharding import AXIS, candidate_mesh

    mesh = candidate_mesh()
    assert mesh.axis_names == (AXIS,) and tuple(mesh.axis_types) == (AxisType.Auto,)
    assert tuple(mesh.abstract_mesh.axis_types) == (AxisType.Auto,)
