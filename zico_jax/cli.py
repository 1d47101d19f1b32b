"""The `zico` command: score architectures, run the correlation experiment.

    zico score --space nats_tss --arch '|nor_conv_3x3~0|+|...|' [--arch ...] [--proxies zico,zico_bc]
               [--batch-size 128] [--num-batches 2] [--beta 1] [--seed 0] [--weights W.npz] [--inputs X.npz]
               [--x64] [--json]
    zico correlate --num-archs 1000 --output-dir runs/nb201   (the same run as experiments/correlation.py)
    zico export-layers --space nats_tss --sample 100 --output to_measure.csv [--arch ...] [--archs-file F]
               (the distinct layers of those networks, to measure on a phone and load back with
               zico_jax.latency.load_layer_table)
    zico data list [--cache-dir DIR]          (the official benchmark files zico-jax can fetch, and where they are)
    zico data fetch NAME [--cache-dir DIR]    (download one into $ZICO_JAX_CACHE_DIR, verified where a sha256 is
               published, and print how to point the loaders at it; see zico_jax.fetch)

Bad input (unknown op, wrong node count, bad edge source, missing file, mismatched weights) exits with status 2
and one line `zico: error: ...` that names the offending part, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from zico_jax.errors import GenotypeError, InputError

EXIT_BAD_INPUT = 2


def _common(p: argparse.ArgumentParser):
    p.add_argument("--space", default="nats_tss", help="search space name (default nats_tss)")
    p.add_argument("--proxies", default="zico,zico_bc", help="comma-separated proxy names")
    p.add_argument("--batch-size", type=int, default=128,
                   help="images per mini-batch (default 128, two batches: the paper's setting, Sec. 4.5)")
    p.add_argument("--num-batches", type=int, default=2, help="mini-batches N (ZiCo's statistics over N)")
    p.add_argument("--beta", type=float, default=None,
                   help="ZiCo-BC's beta (0 gives ZiCo; default: the space's, 1 or 2 for segmentation)")
    p.add_argument("--feature-map", default="output", choices=("output", "input"), help="ZiCo-BC's H, W, C")
    p.add_argument("--count-transposed-conv", action="store_true",
                   help="ZiCo / ZiCo-BC also count transposed convolutions (the official code counts Conv2d and "
                        "Linear only)")
    p.add_argument("--gradients", default="per_batch", choices=("per_batch", "per_sample"),
                   help="ZiCo's statistics over the mini-batch gradients (official) or the per-sample gradients")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and of the batch draw")
    p.add_argument("--dataset", default="cifar10", help="cifar10 | cifar100 | imagenet16_120")
    p.add_argument("--data-source", default="offline", choices=("offline", "tfds"))
    p.add_argument("--data-dir", default=None, help="folder with the offline data (default: $ZICO_JAX_DATA, else the data that ships with zico-jax)")
    p.add_argument("--backend", default="auto", choices=("auto", "tape", "supernet"))
    p.add_argument("--x64", action="store_true", help="compute in float64")
    p.add_argument("--candidate-batch", type=int, default=8, help="candidates per device call (supernet backend)")
    p.add_argument("--no-compilation-cache", action="store_true",
                   help="do not use JAX's persistent compilation cache ($ZICO_JAX_CACHE, ~/.cache/zico_jax/xla)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zico", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score architectures with ZiCo / ZiCo-BC")
    _common(score)
    score.add_argument("--arch", action="append", required=True, help="genotype string (repeatable)")
    score.add_argument("--weights", help=".npz of PyTorch-named weights (instead of the seeded init)")
    score.add_argument("--inputs", help=".npz with x (M, 3, H, W) float32 and y (M,), cut into --num-batches")
    score.add_argument("--cumulative", action="store_true", help="ZiCo on running sums g1, g1+g2 of the per-batch gradients: the superseded first commit of the "
                       "official code (bbabe28); the current official code zeroes the gradients per batch (the default)")
    score.add_argument("--json", action="store_true", help="one JSON object per architecture per line")
    corr = sub.add_parser("correlate", help="rank correlation of proxies against benchmark accuracy")
    _common(corr)
    corr.add_argument("--task", default=None, help="TransNAS-Bench-101 task (class_scene, class_object, jigsaw, "
                      "room_layout, autoencoder, normal, segmentsemantic)")
    corr.add_argument("--num-archs", type=int, default=1000, help="architectures to score (0 = all)")
    corr.add_argument("--arch-seed", type=int, default=0, help="seed of the architecture sample")
    corr.add_argument("--groundtruth", default=None, help="benchmark table (CSV or official file)")
    corr.add_argument("--output-dir", required=True, help="where scores.jsonl, summary.* and scatter.png go")
    export = sub.add_parser("export-layers", help="write the distinct layers of some networks as a CSV to measure")
    export.add_argument("--space", default="nats_tss", help="search space name (default nats_tss)")
    export.add_argument("--space-options", default="", help="space options as KEY=VALUE,..., e.g. image_size=224")
    export.add_argument("--arch", action="append", default=[], help="genotype string (repeatable)")
    export.add_argument("--archs-file", help="a text file with one genotype string per line")
    export.add_argument("--sample", type=int, default=0, help="add this many sampled architectures")
    export.add_argument("--seed", type=int, default=0, help="seed of --sample")
    export.add_argument("--resolution", type=int, default=None, help="write this input resolution in each row")
    export.add_argument("--output", required=True, help="CSV to write (LayerKey fields + an empty latency_ms)")
    export.add_argument("--no-compilation-cache", action="store_true", help=argparse.SUPPRESS)
    data = sub.add_parser("data", help="list or fetch the full official benchmark files")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_list = data_sub.add_parser("list", help="the fetchable files, their URLs and checksums")
    data_fetch = data_sub.add_parser("fetch", help="download one file into the cache folder (verified by sha256 "
                                     "where one is published)")
    data_fetch.add_argument("name", help="registry name, e.g. nasbench101 (see `zico data list`)")
    for p in (data_list, data_fetch):
        p.add_argument("--cache-dir", default=None,
                       help="download folder (default: $ZICO_JAX_CACHE_DIR, else pooch.os_cache('zico_jax'))")
        p.add_argument("--no-compilation-cache", action="store_true", help=argparse.SUPPRESS)
    return parser


def _inputs(args):
    import jax.numpy as jnp

    from zico_jax import data

    dtype = jnp.float64 if args.x64 else jnp.float32
    if getattr(args, "inputs", None):
        xs, ys = data.load_inputs_npz(args.inputs, args.num_batches)
    else:
        x, y = data.load_images(args.dataset, "train", args.data_source, args.data_dir)
        xs, ys = data.make_batches(x, y, args.num_batches, args.batch_size, args.seed)
    return jnp.asarray(xs, dtype), jnp.asarray(ys)


def cmd_score(args) -> int:
    import numpy as np

    from zico_jax.engine import Engine
    from zico_jax.proxies import ProxyOptions
    from zico_jax.results import dumps
    from zico_jax.runtime import zico_bc_beta
    from zico_jax.spaces import get_space
    from zico_jax.spaces.torch_import import load_torch_weights

    space = get_space(args.space)
    beta = zico_bc_beta(space, {"beta": args.beta})
    genotypes = [space.parse(a) for a in args.arch]  # fail on a bad genotype before any compute
    xs, ys = _inputs(args)
    engine = Engine(space, xs, ys, args.proxies.split(","), seed=args.seed, backend=args.backend,
                    options=ProxyOptions(beta, args.feature_map, args.count_transposed_conv),
                    cumulative=args.cumulative, gradients=args.gradients,
                    candidate_batch=args.candidate_batch)
    state_dict = dict(np.load(args.weights)) if args.weights else None
    for g in genotypes:
        params = load_torch_weights(space, g, state_dict, xs.dtype) if state_dict is not None else None
        result = engine.score_one(g, params)
        if args.json:
            row = {**result.row(), "space": args.space, "num_batches": int(xs.shape[0]),
                   "batch_size": int(xs.shape[1]), "beta": beta, "seed": args.seed,
                   "dtype": str(xs.dtype), "gradients": args.gradients,
                   "count_transposed_conv": args.count_transposed_conv, "weights": args.weights or "init"}
            print(dumps(row), flush=True)
        else:
            scores = "  ".join(f"{k}={v:.4f}" for k, v in result.scores.items())
            print(f"{result.arch}  params={result.params}  {scores}", flush=True)
    return 0


def cmd_correlate(args) -> int:
    from zico_jax.configs.correlation import get_config
    from zico_jax.correlation import format_table, run_correlation

    config = get_config()
    config.update(space=args.space, task=args.task, dataset=args.dataset, data_source=args.data_source,
                  data_dir=args.data_dir,
                  groundtruth=args.groundtruth, proxies=args.proxies, num_archs=args.num_archs,
                  arch_seed=args.arch_seed, batch_size=args.batch_size, num_batches=args.num_batches,
                  beta=args.beta, feature_map=args.feature_map, seed=args.seed, x64=args.x64,
                  gradients=args.gradients, count_transposed_conv=args.count_transposed_conv,
                  backend=args.backend, candidate_batch=args.candidate_batch, output_dir=args.output_dir)
    print(format_table(run_correlation(config)))
    return 0


def cmd_export_layers(args) -> int:
    import pathlib

    import numpy as np

    from zico_jax.latency import export_layer_list
    from zico_jax.spaces import get_space, parse_space_options

    space = get_space(args.space, **parse_space_options(args.space_options))
    texts = list(args.arch)
    if args.archs_file:
        path = pathlib.Path(args.archs_file)
        if not path.is_file():
            raise FileNotFoundError(f"--archs-file {path} not found")
        texts += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    genotypes = [space.parse(t) for t in texts]
    rng = np.random.default_rng(args.seed)
    genotypes += [space.sample(rng) for _ in range(args.sample)]
    if not genotypes:
        raise InputError("export-layers: no architectures; give --arch, --archs-file or --sample N")
    keys = export_layer_list(space, genotypes, args.output, args.resolution)
    print(f"wrote {len(keys)} distinct layers of {len(genotypes)} networks to {args.output}; fill latency_ms (ms, "
          "batch 1) and load it with zico_jax.latency.load_layer_table")
    return 0


def cmd_data(args) -> int:
    from zico_jax import fetch

    if args.data_command == "list":
        print(fetch.format_list(args.cache_dir))
        return 0
    try:
        path = fetch.fetch(args.name, args.cache_dir, progressbar=sys.stderr.isatty())
    except fetch.TfdsDataset as e:  # not an error: the dataset is prepared by tfds, here is the command
        print(e)
        return 0
    print(fetch.instructions(fetch.get(args.name), path))
    return 0


def _bad_input(err) -> int:
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    print(f"zico: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "data":  # file downloads: no JAX runtime setup (x64, compilation cache)
        try:
            return cmd_data(args)
        except (FileNotFoundError, KeyError, ValueError, ImportError) as err:
            return _bad_input(err)
    import jax

    if getattr(args, "x64", False):
        jax.config.update("jax_enable_x64", True)
    if not args.no_compilation_cache:
        from zico_jax.compilation_cache import enable_compilation_cache

        enable_compilation_cache()
    from zico_jax.spaces.torch_import import WeightImportError

    try:
        commands = {"score": cmd_score, "correlate": cmd_correlate, "export-layers": cmd_export_layers}
        return commands[args.command](args)
    except (GenotypeError, WeightImportError, FileNotFoundError, KeyError, ValueError) as err:
        return _bad_input(err)


if __name__ == "__main__":
    sys.exit(main())
