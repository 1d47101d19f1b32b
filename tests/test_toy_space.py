"""Adding a space is one module: a user's module registers a tiny space, and score, correlate and search run on it
with no change to the library (in a subprocess, so the registry of the other tests stays as it is)."""

import json
import pathlib
import subprocess
import sys
import textwrap

TOY_SPACE = textwrap.dedent('''
    """A user's search space: two layers, each a 3x3 or a 1x1 convolution (4 architectures)."""
    import itertools

    import flax.linen as nn
    import jax.numpy as jnp
    import numpy as np

    from zico_jax.spaces import GenotypeError, LayerInfo, Space, register_space

    KERNELS = (3, 1)


    class ToyNet(nn.Module):
        code: tuple | None  # None: the whole space, the code is an input
        dtype: jnp.dtype = jnp.float32

        @nn.compact
        def __call__(self, x, code=None):
            for i in range(2):
                if self.code is None:  # both choices, one selected by the code (the architecture as data)
                    a = nn.Conv(8, (3, 3), use_bias=False, dtype=self.dtype, name=f"layer{i}_k3")(x)
                    b = nn.Conv(8, (1, 1), use_bias=False, dtype=self.dtype, name=f"layer{i}_k1")(x)
                    x = jnp.where(code[i] == 0, a, b)
                else:
                    k = KERNELS[self.code[i]]
                    x = nn.Conv(8, (k, k), use_bias=False, dtype=self.dtype, name=f"layer{i}_k{k}")(x)
                x = nn.relu(x)
            return nn.Dense(10, dtype=self.dtype, name="head")(x.mean(axis=(1, 2)))


    @register_space("toy_cells")
    class ToySpace(Space):
        def parse(self, text):
            try:
                code = tuple(KERNELS.index(int(k)) for k in text.split("-"))
            except ValueError:
                raise GenotypeError(f"toy genotype {text!r}: expected two kernels from 3, 1 like '3-1'") from None
            return self.decode(code)

        def encode(self, genotype):
            return np.array(genotype, np.int32)

        def decode(self, code):
            code = tuple(int(c) for c in code)
            if len(code) != 2 or not set(code) <= {0, 1}:
                raise GenotypeError(f"toy code {code}: expected two of 0, 1")
            return ToyGenotype(code)

        def model(self, genotype=None, dtype=jnp.float32):
            return ToyNet(None if genotype is None else tuple(genotype), dtype)

        def layers(self, genotype):
            layers, cin = [], 3
            for i, c in enumerate(genotype):
                k = KERNELS[c]
                layers.append(LayerInfo(f"layer{i}_k{k}", "conv", cin, 8, k, 1, (8, 8), (8, 8)))
                cin = 8
            return layers + [LayerInfo("head", "dense", 8, 10, 1, 1, (1, 1), (1, 1), bias=True)]

        def input_shape(self, batch=1):
            return (batch, 8, 8, 3)

        def enumerate(self):
            return (ToyGenotype(c) for c in itertools.product((0, 1), repeat=2))

        def sample(self, rng):
            return self.decode(rng.integers(0, 2, 2))

        def mutate(self, genotype, rng, num_mutations=1):
            code = list(genotype)
            code[int(rng.integers(2))] ^= 1
            return self.decode(code)

        def arch_id(self, genotype):
            return int(genotype[0] * 2 + genotype[1])


    class ToyGenotype(tuple):
        def __str__(self):
            return "-".join(str(KERNELS[c]) for c in self)
''')

RUN_ALL = textwrap.dedent('''
    import sys

    import toy_space  # noqa: F401  (registers "toy_cells")
    from zico_jax import cli

    common = ["--config.space=toy_cells", "--config.batch_size=4", "--no-compilation-cache"]
    out = sys.argv[1]
    codes = [
        cli.main(["score", "--arch", "3-1", "--arch", "1-1", "--json", *common]),
        cli.main(["correlate", f"--config.groundtruth={out}/truth.csv", "--config.num_archs=0",
                  f"--config.output_dir={out}/correlate", *common]),
        cli.main(["search", "--config.proxy=zico", "--config.iterations=6", "--config.population_size=2",
                  "--config.children_per_round=2", "--config.checkpoint_every=3", "--config.latency_table=",
                  f"--config.output_dir={out}/search", *common]),
    ]
    sys.exit(max(codes))
''')


def test_a_users_space_runs_score_correlate_and_search(tmp_path):
    (tmp_path / "toy_space.py").write_text(TOY_SPACE)
    (tmp_path / "run_all.py").write_text(RUN_ALL)
    (tmp_path / "truth.csv").write_text("arch,accuracy\n3-3,0.9\n3-1,0.8\n1-3,0.7\n1-1,0.6\n")
    proc = subprocess.run([sys.executable, "run_all.py", str(tmp_path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["arch"] for r in rows] == ["3-1", "1-1"] and all(r["space"] == "toy_cells" for r in rows)
    assert all(r["layers_counted"] == 3 for r in rows)  # two convs and the head
    assert rows[0]["params"] == 3 * 3 * 3 * 8 + 8 * 8 + 8 * 10 + 10 and rows[1]["params"] == 3 * 8 + 8 * 8 + 90
    scores = [json.loads(line) for line in (tmp_path / "correlate" / "scores.jsonl").read_text().splitlines()]
    assert sorted(r["arch"] for r in scores) == ["1-1", "1-3", "3-1", "3-3"]
    by_arch = {r["arch"]: r for r in scores}
    for r in rows:  # the correlation scores each architecture as `zico score` does
        assert by_arch[r["arch"]]["zico"] == r["zico"] and by_arch[r["arch"]]["zico_bc"] == r["zico_bc"]
    summary = json.loads((tmp_path / "correlate" / "summary.json").read_text())
    assert summary["correlations"]["zico"]["accuracy"]["n"] == 4
    best = json.loads((tmp_path / "search" / "best.json").read_text())
    assert best["best"]["arch"] in by_arch
    assert pathlib.Path(tmp_path / "search" / "search.jsonl").read_text().strip()
