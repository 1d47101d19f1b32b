"""tpu_scripts/: every script parses; every `zico <command> ...` a script starts is a zico command whose flags parse
to the settings the script means, and so are the usage examples (`run_*.sh ARGS` in the scripts' comments and in
the README's code blocks, each run through its script's launch line); the scripts reach gcloud with the settings
from the environment (gcloud replaced by a stub that records its arguments). With BUCKET set a run writes to
$BUCKET/runs/$RUN_NAME itself (no rsync of results); the command each worker gets is run here too, with stubs for
the VM's `zico`, `python` and `curl`, and so is the job wrapper (SIGTERM forwarded, exit status reported, the log
uploaded) and install.sh's remote part (the `gcs` extra, the optional data copy).

Cheap: bash -n, `zico_jax.cli.parse_config` (resolves a command's ml_collections config, runs nothing), stubs.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import shlex
import shutil
import signal
import stat
import subprocess
import time

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
# Every setting of config.sh, and what a launched run reads: none leaks into a test from the developer's environment.
SETTINGS = ("TPU_NAME", "ZONE", "PROJECT", "ACCELERATOR_TYPE", "RUNTIME_VERSION", "SPOT", "REPO_URL", "BRANCH",
            "REMOTE_DIR", "VENV_DIR", "PYTHON_VERSION", "DATA_DIR", "BUCKET", "LOG_DIR", "SYNC_EVERY",
            "COORDINATOR_PORT", "RUN_NAME", "ZICO_JAX_DATA", "ZICO_JAX_DISTRIBUTED", "JAX_COORDINATOR_ADDRESS",
            "TPU_WORKER_HOSTNAMES")


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


def test_no_script_or_doc_copies_results_to_or_from_the_bucket():
    """The runs write to the bucket themselves: no rsync of a run folder, no periodic upload (SYNC_EVERY)."""
    for path in (*SHELL_SCRIPTS, README):
        text = path.read_text()
        assert "rsync" not in text, f"{path.name}: gcloud storage rsync"
        assert "SYNC_EVERY" not in text, f"{path.name}: SYNC_EVERY"


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


def _run_name(script: str, env: dict[str, str]) -> str:
    return env.get("RUN_NAME") or DEFAULT_RUN_NAME.search((SCRIPTS / script).read_text()).group(1)


def _output_dir(run_name: str, bucket: str = "") -> str:
    """config.sh's `tpu_output_dir RUN_NAME` with BUCKET=bucket, run by bash."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env["BUCKET"] = bucket
    return subprocess.run(["bash", "-c", f'source {shlex.quote(str(SCRIPTS / "config.sh"))}; tpu_output_dir "$1"',
                           "bash", run_name], env=env, capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def _command_line(script: str, env: dict[str, str], args: list[str]) -> tuple[str, list[str]]:
    """The command and arguments `script` starts with the user's `args` ("$@") and `env` (RUN_NAME: the script's
    default when not set; BUCKET): its launch line with the shell variables substituted (OUTPUT_DIR: what
    config.sh's tpu_output_dir gives)."""
    command, words = _launch_of(script)
    run_name = _run_name(script, env)
    values = {"RUN_NAME": run_name, "OUTPUT_DIR": _output_dir(run_name, env.get("BUCKET", ""))}
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


def _check_command_line(where: str, command: str, args: list[str], output_dir: str) -> None:
    """`zico command args` parses, writes to output_dir and has every --config.FIELD=VALUE and --config=PRESET
    among args."""
    assert command in COMMANDS, f"{where}: `zico {command}`: no such command (commands: {', '.join(COMMANDS)})"
    try:
        config = parse_config(COMMANDS[command], args)
    except ZicoError as err:
        pytest.fail(f"{where}: zico {command} {shlex.join(args)}: {err}")
    assert config.output_dir == output_dir, where
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


def test_the_output_folder_is_in_the_bucket_when_there_is_one():
    assert _output_dir("r1") == "runs/r1"
    assert _output_dir("r1", "gs://b/zico") == "gs://b/zico/runs/r1"
    assert _output_dir("r1", "gs://b/zico/") == "gs://b/zico/runs/r1"
    assert _output_dir("r1", "gs://b") == "gs://b/runs/r1"


@pytest.mark.parametrize("bucket", ["", "gs://my-bucket/zico"])
@pytest.mark.parametrize("script", ["run_correlation.sh", "run_search.sh"])
def test_the_launch_line_alone_parses_and_writes_to_the_run_folder(script, bucket):
    command, args = _command_line(script, {"RUN_NAME": "r1", "BUCKET": bucket}, [])
    _check_command_line(script, command, args, f"{bucket}/runs/r1" if bucket else "runs/r1")
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
        _check_command_line(f"{where} ({script} {shlex.join(args)})", command, line,
                            _output_dir(_run_name(script, env), env.get("BUCKET", "")))


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
    _check_command_line("test", "correlate", ["--config.output_dir=gs://b/runs/x"], "gs://b/runs/x")
    with pytest.raises(AssertionError):
        _check_command_line("test", "correlation", ["--config.output_dir=runs/x"], "runs/x")  # the old name
    with pytest.raises(AssertionError):
        _check_command_line("test", "correlate", ["--config.output_dir=runs/x"], "runs/y")
    with pytest.raises(AssertionError):
        _check_command_line("test", "correlate", ["--config.output_dir=runs/x"], "gs://b/runs/x")
    assert ZICO.search('tpu_launch "$R" zico search "$@"').group(1) == "search"
    assert not ZICO.search('"$VENV_DIR/bin/zico" --version') and not ZICO.search("install zico-jax on")


# --- the scripts with gcloud stubbed out --------------------------------------------------------------------------

def _stub(path: pathlib.Path, body: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture()
def fake_gcloud(tmp_path):
    """A `gcloud` on PATH that appends its arguments to calls.txt (each ended by NUL, each call by \\x1e); `gcloud
    storage ls` exits with $FAKE_GCLOUD_LS (0: the object exists). No setting of config.sh comes from outside."""
    bin_dir = tmp_path / "bin"
    calls = tmp_path / "calls.txt"
    _stub(bin_dir / "gcloud", f'printf "%s\\0" "$@" >> "{calls}"\nprintf "\\036" >> "{calls}"\n'
                              'if [ "$1 $2" = "storage ls" ]; then exit "${FAKE_GCLOUD_LS:-0}"; fi\n')
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env, calls


def _calls(calls: pathlib.Path) -> list[list[str]]:
    if not calls.exists():
        return []
    return [call.split("\0")[:-1] for call in calls.read_text().split("\x1e")[:-1]]


def _run(script: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / script), *args], env=env, capture_output=True, text=True, timeout=30)


def _remote(ssh_args: list[str]) -> str:
    """The bash script an ssh call runs on the workers (`--command=bash -c SCRIPT`)."""
    remote = next(a for a in ssh_args if a.startswith("--command="))[len("--command="):]
    shell, flag, script = shlex.split(remote)
    assert (shell, flag) == ("bash", "-c")
    return script


def _sent_command(ssh_args: list[str]) -> list[str]:
    """The words the workers start (ARGS=(...) in the ssh command), as bash reads them."""
    assignment = re.search(r"ARGS=\((?:\\.|[^)\\])*\)", _remote(ssh_args)).group(0)
    out = subprocess.run(["bash", "-c", f'{assignment}; printf "%s\\0" "${{ARGS[@]}}"'], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return out.split("\0")[:-1]


def _remote_value(ssh_args: list[str], name: str) -> str:
    """The value the ssh command assigns to the shell variable `name`, as bash reads it."""
    assignment = re.search(rf"(?:^|; ){name}=((?:\\.|'[^']*'|\$'(?:\\.|[^'\\])*'|[^;\s])*);",
                           _remote(ssh_args)).group(1)
    return subprocess.run(["bash", "-c", f'{name}={assignment}; printf "%s" "${name}"'], capture_output=True,
                          text=True, timeout=30, check=True).stdout


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
needs_setsid = pytest.mark.skipif(shutil.which("setsid") is None or shutil.which("nohup") is None,
                                  reason="needs setsid and nohup")


@needs_bash
def test_run_search_reaches_every_worker_with_the_environment_settings(fake_gcloud):
    env, calls = fake_gcloud
    env.update(TPU_NAME="my-tpu", ZONE="europe-west4-a", RUN_NAME="s1")
    result = _run("run_search.sh", ["--config.proxy=zico_bc", "--config.budgets.latency=10"], env)
    assert result.returncode == 0, result.stderr
    recorded = _calls(calls)
    assert len(recorded) == 1  # one ssh to every worker
    args = recorded[0]
    assert args[:5] == ["compute", "tpus", "tpu-vm", "ssh", "my-tpu"]
    assert "--worker=all" in args and "--zone=europe-west4-a" in args
    command = next(a for a in args if a.startswith("--command="))
    for part in ("zico", "search", "--config.output_dir=runs/s1", "--config.proxy=zico_bc", "nohup setsid",
                 'export ZICO_JAX_DATA="$DATA_DIR"', "export ZICO_JAX_DISTRIBUTED=1", 'PATH="$HOME/$VENV_DIR/bin:'):
        assert part in command
    assert "experiments" not in command and "rsync" not in command
    assert _remote_value(args, "DEST") == ""  # no bucket: nothing to upload the log to
    assert "tail -f" in result.stdout and "tpu-vm scp --recurse my-tpu:~/zico-jax/runs/s1 " in result.stdout
    sent = _sent_command(args)
    assert sent[:2] == ["zico", "search"]
    config = parse_config(COMMANDS["search"], sent[2:])
    assert config.output_dir == "runs/s1" and config.proxy == "zico_bc" and config.budgets.latency == 10


@needs_bash
@pytest.mark.parametrize("script,command", [("run_correlation.sh", "correlate"), ("run_search.sh", "search")])
def test_with_a_bucket_the_run_writes_there_itself(fake_gcloud, script, command):
    env, calls = fake_gcloud
    env.update(TPU_NAME="my-tpu", BUCKET="gs://my-bucket/zico/", RUN_NAME="r2")
    result = _run(script, ["--config.seed=3"], env)
    assert result.returncode == 0, result.stderr
    recorded = _calls(calls)
    # One ssh to every worker: no upload from worker 0 first, no copy of the bucket's files to the workers.
    assert len(recorded) == 1 and recorded[0][3:5] == ["ssh", "my-tpu"] and "--worker=all" in recorded[0]
    assert not any("rsync" in arg for arg in recorded[0])
    sent = _sent_command(recorded[0])
    assert sent[:2] == ["zico", command]
    config = parse_config(COMMANDS[command], sent[2:])
    assert config.output_dir == "gs://my-bucket/zico/runs/r2" and config.seed == 3
    assert _remote_value(recorded[0], "DEST") == "gs://my-bucket/zico/runs/r2"  # the log goes next to it
    assert "gcloud storage cp -r gs://my-bucket/zico/runs/r2 runs/" in result.stdout


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


# --- what a worker runs, with the VM stubbed out --------------------------------------------------------------------

def _fake_vm(tmp_path, env: dict[str, str], *, gcs: bool = True) -> tuple[dict[str, str], pathlib.Path]:
    """A home folder as install.sh leaves it (checkout, venv with `zico` and `python`), a `curl` that finds no
    metadata server (worker 0 of one), and the environment of an ssh session there. The fake `zico` records its
    arguments and $ZICO_JAX_DATA in zico.txt; the venv's python fails `import gcsfs` unless `gcs`."""
    home = tmp_path / "home"
    (home / "zico-jax").mkdir(parents=True)
    record = tmp_path / "zico.txt"
    venv_bin = home / "zico-jax-venv" / "bin"
    _stub(venv_bin / "zico", f'printf "%s\\0" "${{ZICO_JAX_DATA-<unset>}}" "$@" > "{record}"\n'
                             'exit "${FAKE_ZICO_STATUS:-0}"\n')
    _stub(venv_bin / "python", f"exit {0 if gcs else 1}\n")
    _stub(tmp_path / "bin" / "curl", "exit 22\n")
    env = dict(env, HOME=str(home))
    return env, record


def _run_remote(ssh_args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", _remote(ssh_args)], env=env, capture_output=True, text=True, timeout=30)


def _wait_for(path: pathlib.Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return path.read_text()
        time.sleep(0.05)
    pytest.fail(f"{path} has no {text!r} after {timeout} s: {path.read_text() if path.exists() else '(none)'}")


@needs_bash
@needs_setsid
@pytest.mark.parametrize("bucket", ["", "gs://my-bucket/zico"])
def test_a_worker_starts_the_run_with_or_without_a_data_folder(fake_gcloud, tmp_path, bucket):
    env, calls = fake_gcloud
    env.update(BUCKET=bucket, RUN_NAME="r3")
    result = _run("run_correlation.sh", ["--config.num_archs=8"], env)
    assert result.returncode == 0, result.stderr
    (ssh,) = _calls(calls)
    calls.unlink()
    vm_env, record = _fake_vm(tmp_path, env)
    log = pathlib.Path(vm_env["HOME"]) / "zico-jax-logs" / "r3.log"
    output_dir = f"{bucket}/runs/r3" if bucket else "runs/r3"

    # No data folder on the VM: the run starts all the same and reads the data shipped with zico-jax.
    started = _run_remote(ssh, vm_env)
    assert started.returncode == 0, started.stderr
    assert "worker 0" in started.stdout
    _wait_for(log, "exit status 0")
    data, *args = record.read_text().split("\0")[:-1]
    assert data == "<unset>"
    assert args[0] == "correlate" and f"--config.output_dir={output_dir}" in args
    assert parse_config(COMMANDS["correlate"], args[1:]).output_dir == output_dir
    recorded = _calls(calls)
    if bucket:  # the results are in the bucket already; the log goes next to them, nothing else is copied
        assert recorded == [["storage", "cp", str(log), f"{output_dir}.log"]]
        assert f"results: {output_dir}" in log.read_text()
    else:
        assert recorded == []

    # A data folder $DATA_DIR (default ~/zico-jax-data) replaces the shipped data.
    data_dir = pathlib.Path(vm_env["HOME"]) / "zico-jax-data"
    data_dir.mkdir()
    log.unlink()
    started = _run_remote(ssh, vm_env)
    assert started.returncode == 0, started.stderr
    _wait_for(log, "exit status 0")
    assert record.read_text().split("\0")[0] == str(data_dir)


@needs_bash
def test_with_a_bucket_a_worker_refuses_a_venv_that_cannot_write_there(fake_gcloud, tmp_path):
    env, calls = fake_gcloud
    env.update(BUCKET="gs://my-bucket", RUN_NAME="r4")
    assert _run("run_search.sh", [], env).returncode == 0
    (ssh,) = _calls(calls)
    vm_env, record = _fake_vm(tmp_path, env, gcs=False)
    started = _run_remote(ssh, vm_env)
    assert started.returncode == 1 and "install.sh" in started.stderr
    assert not record.exists() and not (pathlib.Path(vm_env["HOME"]) / "zico-jax-logs").exists()


def _job_script(tmp_path) -> pathlib.Path:
    job = tmp_path / "job.sh"
    job.write_text(subprocess.run(["bash", "-c", f'source {shlex.quote(str(SCRIPTS / "config.sh"))}; tpu_job_script'],
                                  capture_output=True, text=True, timeout=30, check=True).stdout)
    return job


@needs_bash
@pytest.mark.parametrize("worker", ["0", "1"])
def test_the_job_forwards_sigterm_waits_for_the_run_and_reports_its_status(fake_gcloud, tmp_path, worker):
    """A preemption notice (SIGTERM) to the job reaches the run, which saves (here: 0.5 s) and exits (the search
    with 143; here 42, which tells the run's status from the 128 + 15 of a `wait` that a signal interrupted); the
    job waits for it, reports and returns that status, and worker 0 uploads the log."""
    env, calls = fake_gcloud
    ready = tmp_path / "ready"
    log = tmp_path / "r5.log"
    log.write_text("the log\n")
    env.update(WORKER=worker, DEST="gs://b/runs/r5", LOG=str(log), RUN_NAME="r5")
    run = f'trap "sleep 0.5; echo saved; exit 42" TERM; touch {shlex.quote(str(ready))}; while :; do sleep 0.1; done'
    job = subprocess.Popen(["bash", str(_job_script(tmp_path)), "bash", "-c", run], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline and job.poll() is None, "the run did not start"
            time.sleep(0.05)
        job.send_signal(signal.SIGTERM)  # to the job alone: the run hears of it only if the job passes it on
        out, _ = job.communicate(timeout=20)
    finally:  # whatever the job did, nothing of this test outlives it (its own session: the job and the run)
        try:
            os.killpg(job.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        job.wait()
    assert job.returncode == 42, out
    lines = out.splitlines()
    assert "saved" in lines, out  # the run heard of the SIGTERM
    reports = [i for i, line in enumerate(lines) if line.endswith(": exit status 42")]
    assert len(reports) == 1 and reports[0] > lines.index("saved"), out  # reported after the run had saved
    assert _calls(calls) == ([["storage", "cp", str(log), "gs://b/runs/r5.log"]] if worker == "0" else [])


@needs_bash
def test_the_job_returns_the_status_of_a_run_that_ends_by_itself(fake_gcloud, tmp_path):
    env, calls = fake_gcloud
    env.update(WORKER="0", DEST="", LOG=str(tmp_path / "r6.log"), RUN_NAME="r6")
    result = subprocess.run(["bash", str(_job_script(tmp_path)), "bash", "-c", "echo scoring; exit 3"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 3 and "scoring" in result.stdout and "exit status 3" in result.stdout
    assert _calls(calls) == []  # no bucket: nothing uploaded


# --- install.sh ---------------------------------------------------------------------------------------------------

@needs_bash
def test_install_puts_the_zico_command_on_every_worker(fake_gcloud):
    env, calls = fake_gcloud
    env.update(TPU_NAME="my-tpu", REPO_URL="https://example.invalid/zico-jax.git")  # no git archive, no scp
    result = _run("install.sh", [], env)
    assert result.returncode == 0, result.stderr
    recorded = _calls(calls)
    assert len(recorded) == 2 and all("--worker=all" in call for call in recorded)
    install, check = (next(a for a in call if a.startswith("--command=")) for call in recorded)
    assert 'install -q -e "$HOME/$REMOTE_DIR[gcs]"' in install
    assert '/bin/zico" --version' in check and "jax.device_count()" in check


def _fake_worker_for_install(tmp_path, env: dict[str, str]) -> tuple[dict[str, str], pathlib.Path]:
    """A worker for install.sh's remote part: `git clone` makes the folder, `python3.11 -m venv` a venv whose pip
    records its arguments in pip.txt and whose python says jax 0.10.0."""
    pip_record = tmp_path / "pip.txt"
    pip = f'#!/usr/bin/env bash\nprintf "%s\\\\0" "$@" >> "{pip_record}"; printf "\\\\036" >> "{pip_record}"\n'
    _stub(tmp_path / "bin" / "git", 'if [ "$1" = clone ]; then mkdir -p "${@: -1}"; fi\n')
    _stub(tmp_path / "bin" / "python3.11",
          'if [ "$1" = -m ] && [ "$2" = venv ]; then\n'
          '  mkdir -p "$3/bin"\n'
          f"  printf '%s' {shlex.quote(pip)} > \"$3/bin/pip\"\n"
          "  printf '#!/usr/bin/env bash\\necho 0.10.0\\n' > \"$3/bin/python\"\n"
          '  chmod +x "$3/bin/pip" "$3/bin/python"\n'
          'fi\n')
    home = tmp_path / "home"
    home.mkdir()
    return dict(env, HOME=str(home)), pip_record


@needs_bash
@pytest.mark.parametrize("bucket_data", [True, False])
def test_install_takes_the_gcs_extra_and_copies_the_bucket_data_only_where_there_is_some(fake_gcloud, tmp_path,
                                                                                           bucket_data):
    env, calls = fake_gcloud
    env.update(BUCKET="gs://my-bucket/zico", REPO_URL="https://example.invalid/zico-jax.git")
    assert _run("install.sh", [], env).returncode == 0
    install = _calls(calls)[0]
    calls.unlink()
    worker_env, pip_record = _fake_worker_for_install(tmp_path, env)
    worker_env["FAKE_GCLOUD_LS"] = "0" if bucket_data else "1"
    result = _run_remote(install, worker_env)
    assert result.returncode == 0, result.stdout + result.stderr
    home = pathlib.Path(worker_env["HOME"])
    pip_calls = _calls(pip_record)
    assert ["install", "-q", "-e", f"{home}/zico-jax[gcs]"] in pip_calls
    libtpu = "https://storage.googleapis.com/jax-releases/libtpu_releases.html"
    assert ["install", "-q", "jax[tpu]==0.10.0", "-f", libtpu] in pip_calls
    copies = [c for c in _calls(calls) if c[:2] == ["storage", "cp"]]
    assert [c for c in _calls(calls) if c[:2] == ["storage", "ls"]] == [["storage", "ls", "gs://my-bucket/zico/data/"]]
    if bucket_data:
        assert copies == [["storage", "cp", "-r", "gs://my-bucket/zico/data/*", f"{home}/zico-jax-data/"]]
    else:
        assert copies == [] and not (home / "zico-jax-data").exists()
        assert "data shipped with zico-jax" in result.stdout
