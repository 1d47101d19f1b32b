"""tpu_scripts/: every script parses; every `zico <command> ...` a script starts is a zico command whose flags parse
to the settings the script means, and so are the usage examples (`run_*.sh ARGS` in the scripts' comments and in
the README's code blocks, each run through its script's launch line); the scripts reach gcloud with the settings
from the environment (gcloud replaced by a stub that records its arguments).

Cheap: bash -n, `zico_jax.cli.parse_config` (resolves a command's ml_collections config, runs nothing), the stub.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import shlex
import shutil
import stat
import subprocess

import pytest

from zico_jax.cli import parse_config
from zico_jax.commands import COMMANDS
from zico_jax.errors import ZicoError

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tpu_scripts"
README = SCRIPTS / "README.md"
SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
EXPECTED = {"config.sh", "create.sh", "install.sh", "run_correlation.sh", "run_search.sh", "delete.sh"}

# `zico <command> ...` as a word of a shell line (not `bin/zico`, `zico-jax`, `$zico` or `` `zico` ``).
ZICO = re.compile(r"(?<![\w/.$`-])zico\s+([^\s-]\S*)(.*)")
EXAMPLE = re.compile(r"(?:^|[\s/])(run_\w+\.sh)(?:\s|$)")
DEFAULT_RUN_NAME = re.compile(r'^: "\$\{RUN_NAME:=([\w.-]+)\}"', re.M)
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def test_the_scripts_are_there():
    assert {p.name for p in SHELL_SCRIPTS} >= EXPECTED
    assert README.is_file()


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_script_is_valid_strict_bash(script):
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n"), "shebang"
    assert "\nset -euo pipefail\n" in text, "strict mode"
    assert re.search(r"^# Usage", text, re.M) or "Usage" in text.split("set -euo")[0], "usage comment at the top"
    assert script.stat().st_mode & stat.S_IXUSR, "executable"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_script_or_doc_starts_experiments_as_modules():
    for path in (*SHELL_SCRIPTS, README):
        assert not re.search(r"-m\s+experiments\.", path.read_text()), f"{path.name}: `python -m experiments.*`"


# --- the command lines ------------------------------------------------------------------------------------------

def _launches() -> list[tuple[str, str, list[str]]]:
    """(script, command, argument words) for every `zico COMMAND ...` on a line of a script that is not a comment."""
    found = []
    for script in SHELL_SCRIPTS:
        for line in script.read_text().splitlines():
            m = ZICO.search(line)
            if m and not line.lstrip().startswith("#"):
                found.append((script.name, m.group(1), shlex.split(m.group(2), comments=True)))
    return found


def _launch_of(script: str) -> tuple[str, list[str]]:
    (command, words), = [(c, w) for s, c, w in _launches() if s == script]
    return command, words


def _examples() -> list[tuple[str, str, dict[str, str], list[str]]]:
    """(where, script, environment, arguments) for every usage example `[VAR=VALUE ...] .../run_NAME.sh ARGS...`: in
    the comments of the scripts and in the README's code blocks."""
    lines = [(s.name, line.lstrip()[1:]) for s in SHELL_SCRIPTS for line in s.read_text().splitlines()
             if line.lstrip().startswith("#")]
    in_code = False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code:
            lines.append(("README.md", line))
    found = []
    for where, line in lines:
        m = EXAMPLE.search(line)
        if not m or not (SCRIPTS / m.group(1)).is_file():
            continue
        words = shlex.split(line[line.index(m.group(1)) + len(m.group(1)):], comments=True)
        before = shlex.split(line[:line.index(m.group(1))].rsplit("&&", 1)[-1])
        env = dict(w.split("=", 1) for w in before if re.fullmatch(r"\w+=.*", w))
        found.append((where, m.group(1), env, words))
    return found


def _command_line(script: str, env: dict[str, str], args: list[str]) -> tuple[str, list[str]]:
    """The command and arguments `script` starts with the user's `args` ("$@") and `env` (RUN_NAME: the script's
    default when not set): its launch line with the shell variables substituted."""
    command, words = _launch_of(script)
    values = {"RUN_NAME": env.get("RUN_NAME") or DEFAULT_RUN_NAME.search((SCRIPTS / script).read_text()).group(1)}
    out = []
    for word in words:
        if word in ("$@", "${@}"):
            out += args
            continue
        unknown = {name for name in VARIABLE.findall(word) if name not in values}
        assert not unknown, f"{script}: give the test a plausible value for {unknown} in {word!r}"
        out.append(VARIABLE.sub(lambda m: values[m.group(1)], word))
    return command, out


def _field(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _as_written(value, text: str) -> bool:
    """Whether a config value is what `--config.FIELD=text` asked for."""
    if isinstance(value, bool):
        return value == (text.lower() in ("true", "1", "yes"))
    if isinstance(value, (int, float)):
        try:
            return value == ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return False
    if value is None:
        return text == "None"
    return str(value) == text


def _leaves(config, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in config.items():
        if hasattr(value, "items"):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check_command_line(where: str, command: str, args: list[str], run_name: str) -> None:
    """`zico command args` parses, writes to runs/run_name and has every --config.FIELD=VALUE and --config=PRESET
    among args."""
    assert command in COMMANDS, f"{where}: `zico {command}`: no such command (commands: {', '.join(COMMANDS)})"
    try:
        config = parse_config(COMMANDS[command], args)
    except ZicoError as err:
        pytest.fail(f"{where}: zico {command} {shlex.join(args)}: {err}")
    assert config.output_dir == f"runs/{run_name}", where
    set_fields = set()
    for arg in args:
        name, _, value = arg[2:].partition("=")
        if name.startswith("config."):
            set_fields.add(name[len("config."):])
            assert _as_written(_field(config, name[len("config."):]), value), f"{where}: {arg} -> {config!r}"
    for arg in args:
        if arg.startswith("--config="):
            preset = arg.split("=", 1)[1]
            expected = _leaves(COMMANDS[command].config_module.get_config(preset))
            got = _leaves(config)
            for key, value in expected.items():
                if key not in set_fields and key != "output_dir":
                    assert got[key] == value, f"{where}: {arg}: config.{key} is {got[key]!r}, the preset's {value!r}"


def test_the_run_scripts_launch_zico_commands_that_exist():
    launched = {(script, command) for script, command, _ in _launches()}
    assert ("run_correlation.sh", "correlate") in launched
    assert ("run_search.sh", "search") in launched
    for script, command in launched:
        assert command in COMMANDS, f"{script} starts `zico {command}`: no such command"


@pytest.mark.parametrize("script", ["run_correlation.sh", "run_search.sh"])
def test_the_launch_line_alone_parses_and_writes_to_runs_run_name(script):
    command, args = _command_line(script, {"RUN_NAME": "r1"}, [])
    _check_command_line(script, command, args, "r1")
    assert all(a.startswith("--config.") or a.startswith("--config=") for a in args), "fields, not aliases"


def test_every_usage_example_parses_to_the_settings_it_writes():
    examples = _examples()
    assert {(s, where) for where, s, _, _ in examples} >= {("run_correlation.sh", "run_correlation.sh"),
                                                           ("run_search.sh", "run_search.sh"),
                                                           ("run_correlation.sh", "README.md"),
                                                           ("run_search.sh", "README.md")}
    assert sum(len(args) for *_, args in examples) >= 4
    for where, script, env, args in examples:
        for arg in args:
            assert arg.startswith("--config"), f"{where}: {arg}: document fields as --config.FIELD=VALUE"
        command, line = _command_line(script, env, args)
        run_name = env.get("RUN_NAME") or DEFAULT_RUN_NAME.search((SCRIPTS / script).read_text()).group(1)
        _check_command_line(f"{where} ({script} {shlex.join(args)})", command, line, run_name)


def test_the_checks_reject_what_zico_would_reject():
    search = COMMANDS["search"]
    config = parse_config(search, ["--config.budgets.latency=10", "--config.data_dir=/d", "--config.output_dir=o"])
    assert _as_written(config.budgets.latency, "10") and not _as_written(config.budgets.latency, "11")
    assert _as_written(config.data_dir, "/d") and not _as_written(config.data_dir, "/e")
    for bad in (["--config.budgets.nope=1"], ["--config.nope=1"], ["--nope=1"], ["--config=nope"],
                ["--config.iterations=many"]):
        with pytest.raises(ZicoError):
            parse_config(search, bad)
    # The preset is the base wherever it stands; fields apply over it (the launch lines put output_dir last).
    late = parse_config(search, ["--config.output_dir=o", "--config=zico_imagenet_450m"])
    assert late.output_dir == "o" and late.space == "zennas_imagenet"
    with pytest.raises(AssertionError):
        _check_command_line("test", "correlation", ["--config.output_dir=runs/x"], "x")  # the old name
    with pytest.raises(AssertionError):
        _check_command_line("test", "correlate", ["--config.output_dir=runs/x"], "y")
    assert ZICO.search('tpu_launch "$R" zico search "$@"').group(1) == "search"
    assert not ZICO.search('"$VENV_DIR/bin/zico" --version') and not ZICO.search("install zico-jax on")


# --- the scripts with gcloud stubbed out --------------------------------------------------------------------------

@pytest.fixture()
def fake_gcloud(tmp_path):
    """A `gcloud` on PATH that appends its arguments to calls.txt (each ended by NUL, each call by \\x1e)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    stub = bin_dir / "gcloud"
    stub.write_text(f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "{calls}"\nprintf "\\036" >> "{calls}"\n')
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("BUCKET", "PROJECT", "REPO_URL", "RUN_NAME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env, calls


def _calls(calls: pathlib.Path) -> list[list[str]]:
    return [call.split("\0")[:-1] for call in calls.read_text().split("\x1e")[:-1]]


def _run(script: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / script), *args], env=env, capture_output=True, text=True, timeout=30)


def _sent_command(ssh_args: list[str]) -> list[str]:
    """The words the workers start (ARGS=(...) in the ssh command), as bash reads them."""
    remote = next(a for a in ssh_args if a.startswith("--command="))[len("--command="):]
    shell, flag, script = shlex.split(remote)
    assert (shell, flag) == ("bash", "-c")
    assignment = re.search(r"ARGS=\((?:\\.|[^)\\])*\)", script).group(0)
    out = subprocess.run(["bash", "-c", f'{assignment}; printf "%s\\0" "${{ARGS[@]}}"'], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return out.split("\0")[:-1]


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@needs_bash
def test_run_search_reaches_every_worker_with_the_environment_settings(fake_gcloud):
    env, calls = fake_gcloud
    env.update(TPU_NAME="my-tpu", ZONE="europe-west4-a", RUN_NAME="s1")
    result = _run("run_search.sh", ["--config.proxy=zico_bc", "--config.budgets.latency=10"], env)
    assert result.returncode == 0, result.stderr
    recorded = _calls(calls)
    assert len(recorded) == 1  # no BUCKET: no upload step on worker 0, one ssh to every worker
    args = recorded[0]
    assert args[:5] == ["compute", "tpus", "tpu-vm", "ssh", "my-tpu"]
    assert "--worker=all" in args and "--zone=europe-west4-a" in args
    command = next(a for a in args if a.startswith("--command="))
    for part in ("zico", "search", "--config.output_dir=runs/s1", "--config.proxy=zico_bc", "nohup setsid",
                 'export ZICO_JAX_DATA="$DATA_DIR"', "export ZICO_JAX_DISTRIBUTED=1", 'PATH="$HOME/$VENV_DIR/bin:'):
        assert part in command
    assert "experiments" not in command
    assert "tail -f" in result.stdout
    sent = _sent_command(args)
    assert sent[:2] == ["zico", "search"]
    config = parse_config(COMMANDS["search"], sent[2:])
    assert config.output_dir == "runs/s1" and config.proxy == "zico_bc" and config.budgets.latency == 10


@needs_bash
def test_run_search_takes_a_preset(fake_gcloud):
    env, calls = fake_gcloud
    env.update(RUN_NAME="zico_450m")
    result = _run("run_search.sh", ["--config=zico_imagenet_450m", "--config.data_dir=/data/tfds"], env)
    assert result.returncode == 0, result.stderr
    sent = _sent_command(_calls(calls)[0])
    assert sent[:2] == ["zico", "search"]
    config = parse_config(COMMANDS["search"], sent[2:])
    assert config.output_dir == "runs/zico_450m" and config.data_dir == "/data/tfds"
    assert config.space == "zennas_imagenet" and config.budgets.flops == 450e6


@needs_bash
def test_run_correlation_starts_zico_correlate(fake_gcloud):
    env, calls = fake_gcloud
    result = _run("run_correlation.sh", ["--config.num_archs=-1", "--config.candidate_batch=64"], env)
    assert result.returncode == 0, result.stderr
    sent = _sent_command(_calls(calls)[0])
    assert sent[:2] == ["zico", "correlate"]
    config = parse_config(COMMANDS["correlate"], sent[2:])
    assert config.output_dir == "runs/correlation"  # the default RUN_NAME
    assert config.num_archs == -1 and config.candidate_batch == 64


@needs_bash
@pytest.mark.parametrize("flag", ["--output_dir=elsewhere", "--output-dir=elsewhere", "--config.output_dir=elsewhere"])
@pytest.mark.parametrize("script", ["run_correlation.sh", "run_search.sh"])
def test_the_run_scripts_refuse_their_own_output_dir(fake_gcloud, script, flag):
    env, calls = fake_gcloud
    result = _run(script, [flag], env)
    assert result.returncode == 2 and "RUN_NAME" in result.stderr
    assert not calls.exists()  # nothing was started


@needs_bash
def test_install_puts_the_zico_command_on_every_worker(fake_gcloud):
    env, calls = fake_gcloud
    env.update(TPU_NAME="my-tpu", REPO_URL="https://example.invalid/zico-jax.git")  # no git archive, no scp
    result = _run("install.sh", [], env)
    assert result.returncode == 0, result.stderr
    recorded = _calls(calls)
    assert len(recorded) == 2 and all("--worker=all" in call for call in recorded)
    install, check = (next(a for a in call if a.startswith("--command=")) for call in recorded)
    assert 'install -q -e "$HOME/$REMOTE_DIR"' in install
    assert '/bin/zico" --version' in check and "jax.device_count()" in check
