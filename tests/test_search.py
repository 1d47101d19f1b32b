"""zico_jax.search: the official EA rules, budgets, Pareto front, random search, exact resumption, preemption."""

from __future__ import annotations

import itertools
import json
import math
import os
import pathlib
import signal
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from zico_jax.search import (
    AnalyticScorer,
    Evolution,
    EvolutionState,
    RandomSearch,
    SearchCheckpointer,
    accept,
    budgets_from_config,
    make_budgets,
    pareto_front,
    run_search,
    update_front,
)
from zico_jax.search.budgets import Budget, Budgets
from zico_jax.spaces import get_space

SPACE = get_space("nats_tss", C=4, N=1, image_size=8)


class StubScore:
    def __init__(self, arch, score, params, flops):
        self.arch, self.scores, self.params, self.flops = arch, {"stub": score}, params, flops


class StubScorer:
    """A deterministic score per genotype (no network): counts calls; can fail or SIGTERM on a given call."""

    def __init__(self, space=SPACE, fail_on_call=None, sigterm_on_call=None):
        self.space, self.calls, self.fail_on_call, self.sigterm_on_call = space, [], fail_on_call, sigterm_on_call

    @staticmethod
    def value(arch: str) -> float:
        code = SPACE.encode(SPACE.parse(arch))
        return float(np.dot(code, [3, 1, 4, 1, 5, 9]) + 0.01 * (SPACE.arch_id(arch) % 97))

    def score(self, archs):
        self.calls.append(list(archs))
        if self.fail_on_call == len(self.calls):
            raise KeyboardInterrupt("simulated kill")
        if self.sigterm_on_call == len(self.calls):
            os.kill(os.getpid(), signal.SIGTERM)
        for a in archs:
            g = self.space.parse(a)
            yield StubScore(a, self.value(a), self.space.params(g), self.space.flops(g))


class FakeLatencyTable:
    """Whole-network table: latency from the code; NaN for archs whose first edge is 'none'."""

    def values(self, archs):
        out = []
        for a in archs:
            code = SPACE.encode(SPACE.parse(a))
            out.append(math.nan if code[0] == 0 else 1.0 + float(np.dot(code, [1, 2, 1, 2, 1, 2])))
        return np.array(out)


def config(**overrides):
    c = ml_collections.ConfigDict(dict(mode="evolution", proxy="stub", iterations=60, population_size=12,
                                       children_per_round=4, seed=3, checkpoint_every=8, resume=True, log_every=0,
                                       budgets=dict(flops=None, params=None, layers=None, latency=None)))
    c.update(overrides)
    return c


class SpySpace:
    """NB201 whose mutate records (parent, num_mutations)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return getattr(SPACE, name)

    def mutate(self, g, rng, num_mutations):
        self.calls.append((str(g), num_mutations))
        return SPACE.mutate(g, rng, num_mutations)


# ------------------------------------------------------------------------------------------ the official rules


def test_mutation_rule_initial_then_random_parent():
    spy = SpySpace()
    initial = str(SPACE.sample(np.random.default_rng(0)))
    evo = Evolution(spy, initial, population_size=20)
    state = evo.init(seed=0)
    for _ in range(40):  # k = 1: the sequential official loop
        size = len(state.population)
        child = evo.propose(state, 1)[0]
        parent, count = spy.calls[-1]
        if size <= 10:
            assert (parent, count) == (initial, 1)
            assert sum(a != b for a, b in zip(SPACE.encode(child), SPACE.encode(initial))) == 1
        else:
            assert count == 2 and parent in state.population
            assert sum(a != b for a, b in zip(SPACE.encode(child), SPACE.encode(parent))) == 2
        evo.accept(state, [child], [StubScorer.value(child)])
    assert len(state.population) == 20


def test_batching_sees_population_at_proposal_time():
    spy = SpySpace()
    initial = str(SPACE.sample(np.random.default_rng(1)))
    evo = Evolution(spy, initial, population_size=50)
    state = evo.init(seed=1)
    evo.accept(state, [initial] * 9, list(range(9)))  # 9 members: a batch of 5 still mutates the initial
    evo.propose(state, 5)
    assert spy.calls == [(initial, 1)] * 5


def test_accept_removes_lowest_first_index():
    state = EvolutionState(["a", "b", "c"], [5.0, 1.0, 3.0], 0, np.random.default_rng(0).bit_generator.state)
    accept(state, ["d", "e"], [1.0, 7.0], population_size=3)
    # official: while len > size: pop the first index of min(scores); "b" (1.0, first) then "d" (1.0)
    assert state.population == ["a", "c", "e"] and state.scores == [5.0, 3.0, 7.0]
    accept(state, ["f"], [float("nan")], population_size=3)  # NaN ranks last
    assert state.population == ["a", "c", "e"]


def test_rejected_children_count_as_iterations(tmp_path):
    limit = sorted(SPACE.params(g) for g in itertools.islice(SPACE.enumerate(), 0, 15625, 97))[80]
    c = config(iterations=40, budgets=dict(flops=None, params=float(limit), layers=None, latency=None))
    scorer = StubScorer()
    summary = run_search(SPACE, scorer, c, output_dir=tmp_path)
    assert summary["iterations"] == 40 and summary["rejected"] > 0 and summary["scored"] > 0
    assert summary["scored"] + summary["rejected"] == 40
    rows = [json.loads(line) for line in (tmp_path / "search.jsonl").read_text().splitlines()]
    assert len(rows) == summary["scored"] and all(r["params"] <= limit for r in rows)
    assert len(scorer.calls) <= 10  # one scorer call per round of 4 proposals
    best = json.loads((tmp_path / "best.json").read_text())["best"]
    assert best["score"] == max(r["stub"] for r in rows)


# ------------------------------------------------------------------------------------------ budgets


def test_budgets_flops_params_latency_and_nan():
    table = FakeLatencyTable()
    budgets = make_budgets(SPACE, flops=1e9, params=1e9, latency=5.0, latency_table=table)
    assert [b.name for b in budgets] == ["params", "flops", "latency"]
    nan_arch = SPACE.decode([0, 1, 1, 1, 1, 1])
    assert budgets.check(nan_arch).name == "latency"  # NaN latency violates
    cheap = SPACE.decode([1, 0, 0, 0, 0, 0])
    assert budgets.check(cheap) is None
    assert make_budgets(SPACE, params=SPACE.params(cheap) - 1).check(cheap).name == "params"
    assert make_budgets(SPACE, flops=SPACE.flops(cheap) - 1).check(cheap).name == "flops"
    assert make_budgets(SPACE, layers=1).check(SPACE.decode([3] * 6)).name == "layers"
    assert Budgets([Budget("x", lambda g: 2.0, 1.0)]).check(cheap).name == "x"
    with pytest.raises(ValueError, match="unknown budget.*'energy'"):
        budgets_from_config(SPACE, {"energy": 1.0})
    with pytest.raises(ValueError, match="latency table"):
        make_budgets(SPACE, latency=1.0)


# ------------------------------------------------------------------------------------------ Pareto


def test_pareto_front_matches_brute_force():
    rng = np.random.default_rng(0)
    pts = np.round(rng.uniform(0, 5, (200, 2)), 0)  # many ties
    pts[3] = [np.nan, 1.0]
    brute = [i for i, p in enumerate(pts) if not np.isnan(p).any() and not any(
        q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1]) for q in pts if not np.isnan(q).any())]
    assert pareto_front(pts) == brute
    assert update_front([["a", 1.0, 5.0]], [["b", 2.0, 4.0], ["c", 0.5, 1.0]]) == [["b", 2.0, 4.0], ["c", 0.5, 1.0]]


def test_pareto_mode_writes_front(tmp_path):
    c = config(mode="pareto", iterations=24)
    summary = run_search(SPACE, StubScorer(), c, output_dir=tmp_path, latency_table=FakeLatencyTable())
    rows = [json.loads(line) for line in (tmp_path / "search.jsonl").read_text().splitlines()]
    uniq = {r["arch"]: (r["stub"], r["latency"]) for r in rows}
    archs = list(uniq)
    expected = {archs[i] for i in pareto_front([uniq[a] for a in archs])}
    assert {p["arch"] for p in summary["pareto"]} == expected
    assert (tmp_path / "pareto.csv").read_text().count("\n") == len(expected) + 1
    with pytest.raises(ValueError, match="pareto.*latency table"):
        run_search(SPACE, StubScorer(), c, output_dir=tmp_path / "x")


# ------------------------------------------------------------------------------------------ random search


def test_random_search(tmp_path):
    search = RandomSearch(SPACE, population_size=5)
    a, b = search.init(7), search.init(7)
    assert search.propose(a, 6) == search.propose(b, 3) + search.propose(b, 3)  # batching-invariant
    summary = run_search(SPACE, StubScorer(), config(mode="random", iterations=30, population_size=5),
                         output_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "search.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and summary["best"]["score"] == max(r["stub"] for r in rows)
    with pytest.raises(ValueError, match="unknown search mode 'annealing'"):
        run_search(SPACE, StubScorer(), config(mode="annealing"), output_dir=tmp_path / "y")


# ------------------------------------------------------------------------------------------ resumption


def _final(path):
    return json.loads((path / "best.json").read_text())


def test_state_machine_resume_via_orbax_is_exact(tmp_path):
    initial = str(SPACE.sample(np.random.default_rng(2)))

    def steps(evo, state, n):
        for _ in range(n):
            children = evo.propose(state, 3)
            evo.accept(state, children, [StubScorer.value(c) for c in children])
            state.iteration += 3

    evo = Evolution(SPACE, initial, population_size=8)
    whole = evo.init(seed=5)
    steps(evo, whole, 20)
    half = evo.init(seed=5)
    steps(evo, half, 10)
    ckpt = SearchCheckpointer(tmp_path / "ckpt", every=1)
    ckpt.save(half)
    ckpt.close()
    restored = SearchCheckpointer(tmp_path / "ckpt").restore()  # a fresh state object
    assert restored.to_dict() == half.to_dict() and restored is not half
    steps(evo, restored, 10)
    assert restored.population == whole.population and restored.scores == whole.scores
    assert restored.rng_state == whole.rng_state and restored.iteration == whole.iteration == 60


def test_killed_search_resumes_to_same_result(tmp_path):
    c = config(iterations=64, checkpoint_every=8)
    run_search(SPACE, StubScorer(), c, output_dir=tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):  # killed during the 9th scoring call (iteration 32..35)
        run_search(SPACE, StubScorer(fail_on_call=9), c, output_dir=tmp_path / "killed")
    assert SearchCheckpointer(tmp_path / "killed" / "checkpoints").latest_step() == 32
    resumed = StubScorer()
    run_search(SPACE, resumed, c, output_dir=tmp_path / "killed")
    assert _final(tmp_path / "killed")["best"] == _final(tmp_path / "whole")["best"]
    a = SearchCheckpointer(tmp_path / "whole" / "checkpoints").restore()
    b = SearchCheckpointer(tmp_path / "killed" / "checkpoints").restore()
    assert a.to_dict() == b.to_dict()
    whole_rows = (tmp_path / "whole" / "search.jsonl").read_text()
    assert (tmp_path / "killed" / "search.jsonl").read_text() == whole_rows  # no row written twice


PREEMPTED_SEARCH = """
import sys, time
sys.path.insert(0, {tests!r})
from zico_jax.sharding import enable_preemption_notice
enable_preemption_notice()  # as `zico search` does on one host: JAX's preemption sync service, one process
from test_search import SPACE, StubScorer, config
from zico_jax.search import run_search

class SlowStubScorer(StubScorer):  # rounds long enough for the notice to travel (JAX syncs it in the background)
    def score(self, archs):
        time.sleep(0.02)
        return super().score(archs)

run_search(SPACE, SlowStubScorer(sigterm_on_call=5), config(iterations=2000, checkpoint_every=100_000),
           output_dir=sys.argv[1])
"""


def test_sigterm_is_a_preemption_notice_checkpointed_through_orbax(tmp_path):
    """A real SIGTERM in a process with JAX's preemption service: the search saves the round the sync point names
    and exits with status 143; resumed, it ends where an uninterrupted run ends."""
    script = PREEMPTED_SEARCH.format(tests=str(pathlib.Path(__file__).parent))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 143, proc.stderr[-3000:]
    ckpt = SearchCheckpointer(tmp_path / "run" / "checkpoints")
    steps = ckpt.manager.all_steps()
    ckpt.close()
    assert len(steps) == 1 and 20 <= steps[0] < 2000, steps  # the SIGTERM came during the 5th round
    c = config(iterations=2000, checkpoint_every=100_000)
    resumed = run_search(SPACE, StubScorer(), c, output_dir=tmp_path / "run")
    whole = run_search(SPACE, StubScorer(), c, output_dir=tmp_path / "whole")
    assert resumed["best"] == whole["best"]
    assert (tmp_path / "run" / "search.jsonl").read_text() == (tmp_path / "whole" / "search.jsonl").read_text()


def test_without_the_preemption_service_sigterm_is_left_alone(tmp_path):
    """No jax.distributed, no preemption service: orbax's check is False and the search installs no handler."""
    previous = signal.getsignal(signal.SIGTERM)
    run_search(SPACE, StubScorer(), config(iterations=8), output_dir=tmp_path)
    assert signal.getsignal(signal.SIGTERM) == previous
    assert not SearchCheckpointer(tmp_path / "checkpoints").reached_preemption(0)


def test_resume_with_other_settings_is_an_error(tmp_path):
    run_search(SPACE, StubScorer(), config(iterations=8), output_dir=tmp_path)
    with pytest.raises(ValueError, match="cannot resume.*seed"):
        run_search(SPACE, StubScorer(), config(iterations=8, seed=4), output_dir=tmp_path)
    with pytest.raises(ValueError, match="resume=True"):
        run_search(SPACE, StubScorer(), config(iterations=8, resume=False), output_dir=tmp_path)


# ------------------------------------------------------------------------------------------ real engine


def test_real_engine_tiny_search(tmp_path):
    from tests.conftest import tiny_batches
    from zico_jax.engine import Engine

    xs, ys = tiny_batches(2, 4, 8)
    engine = Engine(SPACE, xs, ys, ("zico",), seed=0)
    c = config(proxy="zico", iterations=6, population_size=4, children_per_round=3)
    summary = run_search(SPACE, engine, c, output_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "search.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(np.isfinite(r["zico"]) or r["zico"] == -math.inf for r in rows)
    assert summary["best"]["score"] == max(r["zico"] for r in rows)
    params_summary = run_search(SPACE, AnalyticScorer(SPACE), config(proxy="params", iterations=6),
                                output_dir=tmp_path / "params")
    assert params_summary["best"]["params"] == params_summary["best"]["score"]


# ------------------------------------------------------------------------------------------ from a config


def test_run_search_from_config_reports_groundtruth(tmp_path):
    from zico_jax.configs.search import get_config
    from zico_jax.search import run_search_from_config

    c = get_config()
    c.update(proxy="params", iterations=40, population_size=16, children_per_round=8, checkpoint_every=20,
             log_every=0, output_dir=str(tmp_path))
    c.budgets.latency = 8.0
    summary = run_search_from_config(c)
    best, truth = summary["best"], summary["groundtruth"]
    assert best["latency"] <= 8.0 and best["params"] == best["score"]
    # the best of NAS-Bench-201 under the same budget is at least as accurate as the found network
    assert truth["column"] == "cifar10_test" and truth["rank"] >= 1
    assert truth["best_meeting_budget"]["cifar10_test"] >= truth["found"]["cifar10_test"] > 50
    assert json.loads((tmp_path / "search_config.json").read_text())["beta"] is None  # params: no beta
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["iterations"] == 40 and run["versions"]["jax"] and run["devices"]
    c.mode = "annealing"
    with pytest.raises(ValueError, match="config.mode 'annealing': expected one of evolution"):
        run_search_from_config(c)
    c.update(mode="evolution", latency_table="no_such_device", output_dir=str(tmp_path / "other"))
    with pytest.raises(ValueError, match="config.latency_table 'no_such_device' is needed"):
        run_search_from_config(c)


def test_search_on_a_zico_bc_space_under_a_predicted_note10_latency(tmp_path):
    """efficientnet_cls's conv layers are not OFA's Note10 blocks: the per-layer table at one resolution plus
    the fitted predictor gives every candidate a latency, and the found network meets the budget."""
    from zico_jax.configs.search import get_config
    from zico_jax.latency import fit_predictor, get_latency_table
    from zico_jax.search import run_search_from_config
    from zico_jax.spaces import get_space

    c = get_config()
    c.update(space="efficientnet_cls", proxy="params", latency_table="note10_lut", iterations=24,
             population_size=8, children_per_round=8, checkpoint_every=24, log_every=0, output_dir=str(tmp_path))
    c.budgets.latency = 40.0
    with pytest.raises(ValueError, match="measured at resolutions 160, 164, .*224; pass resolution"):
        run_search_from_config(c)
    c.latency_resolution = 224
    with pytest.raises(KeyError, match="not in layer table 'note10_lut'"):  # no predictor: the gap is named
        run_search_from_config(c)
    c.update(latency_predictor=True, output_dir=str(tmp_path / "predicted"))
    best = run_search_from_config(c)["best"]
    lut = get_latency_table("note10_lut")
    space = get_space("efficientnet_cls")
    expected = sum(fit_predictor(lut).predict_many(space.layers(space.parse(best["arch"]))))
    assert best["latency"] <= 40.0 and best["latency"] == pytest.approx(expected, rel=1e-9)
    c.update(latency_table="nb201_sd855_gpu", output_dir=str(tmp_path / "whole"))
    with pytest.raises(ValueError, match="whole-network table"):
        run_search_from_config(c)


# ------------------------------------------------------------------ the official ImageNet presets and Zen-NAS budgets

CONFIG_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "configs",
                           "search.py")
# Hand-copied from SLDGroup/ZiCo scripts/ZiCo_NAS_ImageNet_flops{450M,600M,1G}.sh: (budget_flops, max_layers).
OFFICIAL_SCRIPTS = {"zico_imagenet_450m": (450e6, 14), "zico_imagenet_600m": (600e6, 14),
                    "zico_imagenet_1g": (1000e6, 16)}


def load_config_flag(arg):
    from absl import flags
    from ml_collections import config_flags

    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", CONFIG_FILE, "", flag_values=fv, lock_config=False)
    fv(["prog"] + ([f"--config={arg}"] if arg else []))
    return fv.config


@pytest.mark.parametrize("preset", sorted(OFFICIAL_SCRIPTS))
def test_official_imagenet_presets(preset):
    from zico_jax.configs.search import get_config

    c = load_config_flag(f"{CONFIG_FILE}:{preset}")  # as --config experiments/configs/search.py:<preset>
    assert c.to_dict() == get_config(preset).to_dict()
    flops, layers = OFFICIAL_SCRIPTS[preset]
    assert (c.space, c.proxy, c.mode, c.dataset, c.data_source) == (
        "zennas_imagenet", "zico", "evolution", "imagenet2012", "tfds")
    # scored as compute_nas_score builds it: no_reslink=True, no SE; --num_classes 1000, --input_image_size 224
    assert c.space_options.to_dict() == dict(residual=False, se=False, num_classes=1000, image_size=224)
    # --evolution_max_iter 100000, --population_size 512, one child per loop iteration, --batch_size 128, maxbatch 2
    assert (c.iterations, c.population_size, c.children_per_round, c.batch_size, c.num_batches) == (
        100_000, 512, 1, 128, 2)
    assert c.budgets.to_dict() == dict(flops=flops, layers=layers, params=None, latency=None)
    space = get_space(c.space, **c.space_options.to_dict())
    assert str(space.initial_genotype()) == (  # the scripts' init_plainnet.txt
        "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
        "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,2048,1,1)")


def test_default_preset_unchanged():
    from zico_jax.configs.search import get_config

    c = load_config_flag(None)
    assert c.to_dict() == get_config().to_dict() == get_config("default").to_dict()
    assert load_config_flag(f"{CONFIG_FILE}:default").to_dict() == c.to_dict()
    assert (c.space, c.dataset, c.children_per_round, c.batch_size, c.num_batches, c.iterations) == (
        "nats_tss", "cifar10", 8, 128, 2, 100_000)
    assert all(v is None for v in c.budgets.to_dict().values())


def test_unknown_preset_is_one_line_naming_the_presets():
    import subprocess
    import sys

    from zico_jax.configs.search import PRESETS, get_config
    from zico_jax.errors import UnknownNameError

    with pytest.raises(UnknownNameError) as err:
        get_config("zico_imagenet_2g")
    message = str(err.value)
    assert "\n" not in message and "'zico_imagenet_2g'" in message and all(p in message for p in PRESETS)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(CONFIG_FILE)))
    proc = subprocess.run([sys.executable, "experiments/search.py", "--config",
                           "experiments/configs/search.py:zico_imagenet_2g"], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"zico search: error: {message}"]


ZEN = ("SuperConvK3BNRELU(3,16,2,1)SuperResIDWE2K5(16,24,2,16,2)SuperResIDWE4K3(24,24,1,8,3)"
       "SuperResIDWE1K7(24,40,2,24,1)SuperConvK1BNRELU(40,64,1,1)")


def test_zennas_params_budget_counts_the_network_with_residual_links():
    """evolution_search.py checks --budget_model_size on MasterNet(no_reslink=False).get_model_size() and scores
    MasterNet(no_reslink=True): the budget must count the shortcut projections although the scored network has
    none. Independent count: the flax network with residual=True, every conv / dense kernel and BN scale (the
    official get_model_size counts BN once per channel, ResBlock projections as cin * cout + cout, and the
    classifier's bias as int(use_bias) = 1)."""
    import jax
    import jax.numpy as jnp

    scored = get_space("zennas_imagenet", num_classes=10, image_size=32)
    trained = get_space("zennas_imagenet", residual=True, num_classes=10, image_size=32)
    g = scored.parse(ZEN)
    variables = jax.eval_shape(lambda: trained.model(g).init(jax.random.PRNGKey(0), jnp.zeros(trained.input_shape(2))))
    leaves = jax.tree_util.tree_leaves_with_path(variables["params"])
    names = {p[-1].key for p, _ in leaves}
    assert names == {"kernel", "scale", "bias"} and any("proj" in jax.tree_util.keystr(p) for p, _ in leaves)
    expected = sum(int(np.prod(x.shape)) for p, x in leaves if p[-1].key in ("kernel", "scale")) + 1
    for space in (scored, trained):
        budget = budgets_from_config(space, {"params": 1e12}).get("params")
        assert budget.value(g) == expected
    # the scored (no shortcut) network has fewer weights: the budget is not measured on it
    assert budgets_from_config(scored, {"params": expected}).check(g) is None
    assert budgets_from_config(scored, {"params": expected - 1}).check(g).name == "params"
    no_res = jax.eval_shape(lambda: scored.model(g).init(jax.random.PRNGKey(0), jnp.zeros(scored.input_shape(2))))
    no_res_count = sum(int(np.prod(x.shape)) for p, x in jax.tree_util.tree_leaves_with_path(no_res["params"])
                       if p[-1].key in ("kernel", "scale")) + 1
    assert no_res_count < expected


def test_zennas_layers_budget_is_the_official_get_num_layers():
    # MasterNet.get_num_layers: sub_layers summed over every block, stem and final 1x1 conv included: 1+2+3+1+1.
    space = get_space("zennas_imagenet")
    g = space.parse(ZEN)
    assert budgets_from_config(space, {"layers": 8}).check(g) is None
    assert budgets_from_config(space, {"layers": 7}).check(g).name == "layers"
    # the official check order: layers, model size, FLOPs
    assert [b.name for b in budgets_from_config(space, {"flops": 1e9, "params": 1e9, "layers": 14})] == [
        "layers", "params", "flops"]


def test_official_preset_runs_with_the_params_objective(tmp_path):
    """The preset drives run_search_from_config (params objective: no images needed): official budgets apply."""
    from zico_jax.configs.search import get_config
    from zico_jax.search import run_search_from_config

    c = get_config("zico_imagenet_450m")
    c.update(proxy="params", iterations=30, population_size=8, checkpoint_every=30, log_every=0,
             output_dir=str(tmp_path))
    summary = run_search_from_config(c)
    assert summary["budgets"] == {"layers": 14.0, "flops": 450e6} and summary["iterations"] == 30
    space = get_space("zennas_imagenet")
    best = space.parse(summary["best"]["arch"])
    assert space.num_layers(best) <= 14 and space.search_flops(best) <= 450e6


def test_imagenet_scoring_batches(monkeypatch):
    """dataset imagenet2012: num_batches x batch_size training images at the space's input size from tfds."""
    from zico_jax import from_config as scoring_setup
    from zico_jax import train_data
    from zico_jax.configs.search import get_config
    from zico_jax.search import from_config

    seen = {}

    class FakeImageNet:
        def __init__(self, config, image_size):
            seen["size"], seen["batch"] = image_size, config.batch_size

        def batches(self, start_step):
            assert start_step == 0
            for i in itertools.count():
                yield (np.full((seen["batch"], seen["size"], seen["size"], 3), i, np.float32),
                       np.full((seen["batch"],), i, np.int32))

    class FakeEngine:
        def __init__(self, space, xs, ys, proxies, **kw):
            seen.update(xs=xs.shape, ys=np.asarray(ys), proxies=proxies)

    monkeypatch.setattr(train_data, "ImageNetData", FakeImageNet)
    monkeypatch.setattr(scoring_setup, "Engine", FakeEngine)  # the engine every command builds
    c = get_config("zico_imagenet_600m")
    c.update(batch_size=4)
    c.space_options.image_size = 32
    space = get_space(c.space, **c.space_options.to_dict())
    from_config._scorer(space, c)
    assert seen["xs"] == (2, 4, 32, 32, 3) and seen["proxies"] == ("zico",)
    assert seen["ys"].tolist() == [[0] * 4, [1] * 4]
    c.data_source = "offline"
    with pytest.raises(ValueError, match="set data_source='tfds'"):
        from_config._scorer(space, c)
