"""`zico <command>`: one front door for every run, and the same vocabulary in `python experiments/<script>.py`.

    zico correlate --config.num_archs=50 --config.output_dir=runs/nb201
    zico search --config=zico_imagenet_450m --config.data_dir=/data/tfds --config.output_dir=runs/zico_450m
    zico score --json \
        --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    zico data fetch nasbench101
    zico --version

Every command runs on its ml_collections config (`zico_jax/configs/<command>.py`, locked): `--config=PRESET` or
`--config=path/to/config.py[:PRESET]` chooses it, `--config.FIELD=VALUE` sets a field (`--config.space_options.C=8`
adds a space option), and a few short flags are aliases of fields (`--num-archs 50`, `--output_dir runs/x`,
`--x64`, `--arch A` appended to config.archs; `zico <command> --help` lists them). A misspelt field or flag is one
line naming it and the closest valid ones. A user error (a `ZicoError`: bad genotype, missing file, bad setting)
is one line `zico <command>: error: ...` and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import ast
import pathlib
import sys
from typing import Any, Sequence

import ml_collections
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from zico_jax.commands import COMMANDS, Command
from zico_jax.errors import InputError, UnknownNameError, ZicoError, closest
from zico_jax.runtime import prepare_runtime
from zico_jax.spaces import parse_space_options
from zico_jax.version import __version__

EXIT_BAD_INPUT = 2


class UsageError(InputError):
    """A command line that does not parse (unknown flag or field, a value of the wrong type)."""


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: zico <command> [--config=PRESET|FILE[:PRESET]] [--config.FIELD=VALUE ...] [flags]",
             "       zico --version", "", "commands:"]
    lines += [f"  {name:<{width}}  {c.help}" for name, c in COMMANDS.items()]
    return "\n".join(lines + ["", "zico <command> --help: the command's fields and aliases."])


def _command_help(command: Command) -> str:
    config = command.config_module.get_config()
    fields = ", ".join(sorted(config.keys()))
    aliases = ", ".join("--" + a.replace("_", "-") for a in (*command.aliases, *command.repeated))
    presets = ", ".join(command.config_module.PRESETS)
    return (f"usage: zico {command.name} [--config=PRESET|FILE[:PRESET]] [--config.FIELD=VALUE ...]"
            + (f" {' '.join(p.upper() for p in command.positional)}" if command.positional else "")
            + f"\n\n{command.help}.\n\nconfig: {command.config_path}\npresets: {presets}\nfields: {fields}\n"
            f"aliases: {aliases or '(none)'}\n\n" + (command.config_module.__doc__ or "").strip())


def _coerce(config, field: str, raw: str) -> Any:
    """A short flag's text as the type of config.field."""
    kind = config.get_type(field)
    try:
        if kind is bool:
            if raw.lower() in ("true", "1", "yes", ""):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if kind in (list, tuple):
            return kind(item.strip() for item in raw.split(",") if item.strip())
        if kind in (int, float):
            return kind(ast.literal_eval(raw)) if kind is float else int(raw)
        return raw
    except (ValueError, SyntaxError):
        raise UsageError(f"--{field} {raw!r}: expected a value of type {kind.__name__}") from None


def _split_argv(command: Command, argv: Sequence[str]):
    """The command line as (absl argv: --config and --config.FIELD flags; alias settings; space options)."""
    absl_argv, settings, space_options, positional = [], [], [], []
    types = command.config_module.get_config()  # the field types of the aliases (presets do not change them)
    names = {a.replace("_", "-"): a for a in command.aliases} | {a: a for a in command.aliases}
    repeated = {r.replace("_", "-"): f for r, f in command.repeated.items()} | dict(command.repeated)
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--"):
            positional.append(arg)
            continue
        name, has_value, value = arg[2:].partition("=")
        if name == "config" or (name.startswith("config.") and not name.startswith("config.space_options.")):
            absl_argv.append(arg if has_value or name != "config" else f"--config={argv[i]}")
            i += 0 if has_value or name != "config" else 1
            continue
        if name.startswith("config.space_options."):
            space_options.append(f"{name.split('.', 2)[2]}={value}")
            continue
        if name in ("no-compilation-cache", "no_compilation_cache"):
            settings.append(("compilation_cache", False))
            continue
        field = names.get(name) or repeated.get(name)
        if field is None:
            valid = sorted(n for n in {*names, *repeated} if "_" not in n)
            near = closest(name, valid)
            raise UsageError(f"unknown flag --{name} for `zico {command.name}`"
                             + (f"; did you mean {' or '.join('--' + n for n in near)}?" if near else "")
                             + " (fields are set as --config.FIELD=VALUE)")
        if not has_value:
            takes_value = name in repeated or field == "space_options" or types.get_type(field) is not bool
            if takes_value:
                if i >= len(argv):
                    raise UsageError(f"--{name} needs a value")
                value, i = argv[i], i + 1
        if field == "space_options":
            space_options.append(value)
        elif name in repeated:
            settings.append((field, ("append", value)))
        else:
            settings.append((field, value))
    if len(positional) > len(command.positional):
        raise UsageError(f"unexpected argument(s) for `zico {command.name}`: {' '.join(positional)}")
    settings += list(zip(command.positional, positional))
    return absl_argv, settings, space_options


def _resolve_config_flag(command: Command, absl_argv: list[str]) -> list[str]:
    """The chosen `--config` first (the fields apply over it, wherever it stood), a bare `--config=NAME` as a
    preset of the command's own config file (the config's get_config checks the name)."""
    chosen = f"--config={command.config_path}"
    for arg in absl_argv:
        if arg.startswith("--config="):
            value = arg.split("=", 1)[1]
            path, _, preset = value.partition(":") if value.endswith(".py") or ".py:" in value else ("", "", value)
            path = path or command.config_path
            if not pathlib.Path(path).is_file():
                raise UsageError(f"--config: {path} is not a file")
            chosen = f"--config={path}" + (f":{preset}" if preset else "")
    return [chosen] + [a for a in absl_argv if not a.startswith("--config=")]


def _zico_error_inside(err: BaseException) -> ZicoError | None:
    """The first ZicoError a config file's get_config raised: ml_collections re-raises it with a traceback in its
    message, and absl wraps that in a flags error."""
    found, inner = None, err.__context__
    while inner is not None:
        found = inner if isinstance(inner, ZicoError) else found
        inner = inner.__context__
    return found


def _check_fields(config: ml_collections.ConfigDict, absl_argv: list[str]) -> None:
    """Every --config.a.b=... names a field of the config (one line with the closest ones otherwise)."""
    for arg in absl_argv:
        if not arg.startswith("--config."):
            continue
        node, path = config, arg[len("--config."):].split("=", 1)[0].split(".")
        for depth, key in enumerate(path):
            keys = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            if key not in keys:
                where = f" (in config.{'.'.join(path[:depth])})" if depth else ""
                raise UnknownNameError.of(f"config field{where}", key, keys)
            node = node[key]


def _absl_parse(command: Command, absl_argv: list[str]) -> ml_collections.ConfigDict:
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", command.config_path, "the run's config", flag_values=flag_values,
                                    lock_config=True, sys_argv=["zico", *absl_argv])
    flag_values(["zico", *absl_argv])
    return flag_values.config


def parse_config(command: Command, argv: Sequence[str]) -> ml_collections.ConfigDict:
    """The command's resolved config from its command line (see the module docstring)."""
    absl_argv, settings, space_options = _split_argv(command, argv)
    absl_argv = _resolve_config_flag(command, absl_argv)
    try:
        _check_fields(_absl_parse(command, absl_argv[:1]), absl_argv)  # the config alone, to name a bad field
        config = _absl_parse(command, absl_argv)
    except flags.Error as err:
        raise _zico_error_inside(err) or UsageError(str(err).splitlines()[0]) from None
    for field, value in settings:
        if field not in config:
            raise UnknownNameError.of("config field", field, config.keys())
        if isinstance(value, tuple) and value[0] == "append":
            config[field] = (*config[field], value[1])
        elif isinstance(value, str):
            config[field] = _coerce(config, field, value)
        else:
            config[field] = value
    if space_options:
        options = parse_space_options(",".join(space_options))
        with config.space_options.unlocked():
            config.space_options.update(options)
    return config


def run(command_name: str, argv: Sequence[str]) -> int:
    """`zico <command_name> <argv>`; returns the exit status."""
    command = COMMANDS[command_name]
    if any(a in ("-h", "--help", "-help") for a in argv):
        print(_command_help(command))
        return 0
    try:
        config = parse_config(command, argv)
        if command.jax_runtime:
            prepare_runtime(config)
        command.run(config)
    except ZicoError as err:
        print(f"zico {command.name}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else EXIT_BAD_INPUT
    if argv[0] == "--version":
        print(f"zico-jax {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        near = closest(argv[0], COMMANDS)
        print(f"zico: error: unknown command {argv[0]!r}" + (f"; did you mean {' or '.join(near)}?" if near else "")
              + f" (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return EXIT_BAD_INPUT
    if COMMANDS[argv[0]].logs_progress:  # long runs log what they do, as absl scripts do
        absl_logging.use_absl_handler()
        absl_logging.set_verbosity(absl_logging.INFO)
    return run(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
