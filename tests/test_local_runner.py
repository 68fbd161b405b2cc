"""The long-lived local runner: ``bcdrill runner start|status|stop`` and ``bcdrill run`` as its
thin client — real daemon, its own real Prefect server (database in the runner's
``$BCDRILL_HOME``), real drills on the Docker lab.

* two drills through the runner (the second reuses it: same pid, nothing started) end with the
  exit code, outcome and score of the same drill run in-process, and the command imported
  neither Prefect nor the Docker SDK (nor WeasyPrint);
* SIGINT to the client while the fault is in place: the drill aborts (``run.aborted``), the
  fault is reverted, the container runs again, the client exits 3;
* ``runner stop`` leaves no process of the runner behind (daemon, server, forkserver, drills);
* the runner is started by the first plain ``bcdrill run`` (the module's fixture).

No timed assertions: the walls are only printed (see benchmarks/runner.py for the figures).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from engine.record.records import RecordType
from engine.record.runstore import pid_alive
from engine.testing import wait_until
from tests.conftest import BCDRILL, LAB_NAME, REPO
from tests.journal_helpers import types, wait_for_record
from tests.test_light_commands import WRAPPER  # run the real entry point, note sys.modules

pytestmark = [pytest.mark.docker, pytest.mark.prefect]

QUICK = REPO / "tests" / "data" / "runner-quick.yaml"
STOREFRONT_DOWN = REPO / "playbooks" / "storefront-down.yaml"
STOREFRONT = f"bcdrill-{LAB_NAME}-storefront"
CLIENT_HEAVY = ("prefect", "docker", "weasyprint")
START_S = 400  # the runner's Prefect server: a cold start on a loaded 2-core machine


def _bcdrill(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BCDRILL, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False
    )


def _processes_of(home: Path) -> list[int]:
    """Live processes whose environment carries this BCDRILL_HOME (the runner and its children)."""
    marker = f"BCDRILL_HOME={home}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        try:
            if pid != os.getpid() and marker in environ.read_bytes().split(b"\0") and pid_alive(pid):
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def runner_env(tmp_path_factory: pytest.TempPathFactory, lab_env: Path) -> Iterator[dict[str, str]]:
    """A runner of its own (own home, own Prefect server, no configured PREFECT_API_URL),
    started the way a user meets it: by a plain ``bcdrill run`` when none is up (first use)."""
    home = tmp_path_factory.mktemp("runner-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BCDRILL_RUNNER"))}
    env.update({"BCDRILL_HOME": str(home), "BCDRILL_PDF": "off"})
    runs = tmp_path_factory.mktemp("first-use-runs")
    first = _bcdrill(*_run_args(lab_env, runs), env=env, timeout=START_S)
    try:
        assert first.returncode in (0, 1), first.stderr[-3000:]
        assert "started the bcdrill runner" in first.stderr and "through the runner" in first.stderr
        assert [p for p in runs.iterdir() if (p / "debrief.json").exists()], first.stderr[-3000:]
        yield env
    finally:
        _bcdrill("runner", "stop", env=env)
        for pid in _processes_of(home):  # never leave a process of ours, whatever failed above
            os.kill(pid, signal.SIGKILL)


def _run_args(lab_env: Path, runs: Path, *extra: str) -> list[str]:
    return ["run", str(QUICK), "--env", str(lab_env), "--responders", "auto", "--runs", str(runs), *extra]


def _summary(result: subprocess.CompletedProcess[str], runs: Path) -> tuple[int, str, object]:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    debrief = json.loads((run_dir / "debrief.json").read_text())
    outcome = next(line for line in result.stderr.splitlines() if line.startswith("outcome:"))
    return result.returncode, outcome, debrief["score"]


def _served(
    env: dict[str, str], lab_env: Path, runs: Path, modules: Path
) -> subprocess.CompletedProcess[str]:
    """``bcdrill run`` in default mode (the runner is up), noting the modules it imported."""
    argv = [sys.executable, "-c", WRAPPER, str(modules), *_run_args(lab_env, runs)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=REPO, env=env, check=False)


def test_runs_through_the_runner_end_as_in_process(
    runner_env: dict[str, str], lab_env: Path, prefect_api: str, tmp_path: Path
) -> None:
    info = json.loads((Path(runner_env["BCDRILL_HOME"]) / "runner" / "runner.json").read_text())
    walls, results = [], []
    for n in (1, 2):
        runs, modules = tmp_path / f"served-{n}", tmp_path / f"modules-{n}.json"
        t0 = time.monotonic()
        result = _served(runner_env, lab_env, runs, modules)
        walls.append(time.monotonic() - t0)
        assert f"through the runner (pid {info['pid']})" in result.stderr, result.stderr[-3000:]
        assert "started the bcdrill runner" not in result.stderr
        assert (
            RecordType.RUN_STARTED in result.stderr and RecordType.FAULT_REVERTED in result.stderr
        )  # progress
        # paramiko stays: validating the lab's environment parses its pinned SSH host keys
        heavy = sorted(m for m in json.loads(modules.read_text()) if m.split(".")[0] in CLIENT_HEAVY)
        assert not heavy, f"the thin client imported {heavy[:5]}"
        results.append(_summary(result, runs))
    in_process_env = {
        **runner_env,
        "PREFECT_API_URL": prefect_api,
    }  # the session's server: no start to wait for
    runs = tmp_path / "in-process"
    t0 = time.monotonic()
    local = _bcdrill(*_run_args(lab_env, runs, "--in-process"), env=in_process_env)
    walls.append(time.monotonic() - t0)
    assert "through the runner" not in local.stderr
    print(f"walls: served {walls[0]:.1f}s, {walls[1]:.1f}s; in-process (configured server) {walls[2]:.1f}s")
    assert results == [_summary(local, runs)] * 2, (results, local.stderr[-3000:])
    still = json.loads((Path(runner_env["BCDRILL_HOME"]) / "runner" / "runner.json").read_text())
    assert still["pid"] == info["pid"]


def test_ctrl_c_in_the_client_aborts_the_drill_and_reverts(
    runner_env: dict[str, str], lab_env: Path, tmp_path: Path
) -> None:
    """Also when the command was started with SIGINT ignored, as a shell script's `bcdrill run … &`
    is: it listens for SIGINT while it follows the drill, as the drill in the command does."""
    runs = tmp_path / "runs"
    argv = [BCDRILL, "run", str(STOREFRONT_DOWN), "--env", str(lab_env), "--responders", "manual",
            "--time-scale", "0.1", "--runs", str(runs), "--runner"]  # fmt: skip
    ignoring_sigint = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]  # exec keeps the ignore
    client = subprocess.Popen(
        ignoring_sigint, cwd=REPO, env=runner_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        run_dir = wait_for_record(runs, RecordType.FAULT_APPLIED, timeout_s=120)
        assert not docker.from_env().containers.get(STOREFRONT).attrs["State"]["Running"]
        client.send_signal(signal.SIGINT)
        _, stderr = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 3, stderr[-3000:]
    assert "aborting and reverting" in stderr
    kinds = types(run_dir)
    assert RecordType.RUN_ABORTED in kinds, kinds
    assert kinds.index(RecordType.FAULT_REVERTED) > kinds.index(RecordType.RUN_ABORTED), kinds
    assert kinds[-1] == RecordType.RUN_ENDED
    assert docker.from_env().containers.get(STOREFRONT).attrs["State"]["Running"]


def test_a_killed_client_aborts_its_drill_which_reverts(
    runner_env: dict[str, str], lab_env: Path, tmp_path: Path
) -> None:
    """kill -9 of `bcdrill run`: nobody is left to see or stop the drill, so it aborts itself."""
    runs = tmp_path / "runs"
    argv = [BCDRILL, "run", str(STOREFRONT_DOWN), "--env", str(lab_env), "--responders", "manual",
            "--time-scale", "0.1", "--runs", str(runs)]  # fmt: skip
    quiet = subprocess.DEVNULL
    client = subprocess.Popen(argv, cwd=REPO, env=runner_env, stdout=quiet, stderr=quiet)
    try:
        run_dir = wait_for_record(runs, RecordType.FAULT_APPLIED, timeout_s=120)
        client.kill()
        client.wait(timeout=30)
        wait_for_record(runs, RecordType.RUN_ENDED, timeout_s=120)
    finally:
        if client.poll() is None:
            client.kill()
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    kinds = [r["type"] for r in records]
    aborted = next(r for r in records if r["type"] == RecordType.RUN_ABORTED)
    assert f"(pid {client.pid}) is gone" in aborted["data"]["reason"], aborted
    assert kinds.index(RecordType.FAULT_REVERTED) > kinds.index(RecordType.RUN_ABORTED), kinds
    assert docker.from_env().containers.get(STOREFRONT).attrs["State"]["Running"]


_HOLD_SLOT = """
import os, sys, time
from engine.orchestration.local_runner import live_runner
os.environ["PREFECT_API_URL"] = live_runner().url  # as a drill of the runner has it
from engine.orchestration.slot import environment_slot
with environment_slot(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
print("released", flush=True)
"""


def test_recover_frees_the_slot_a_killed_drill_held_on_the_runners_server(runner_env: dict[str, str]) -> None:
    environment = "recover-on-the-runner"
    up = _bcdrill("runner", "start", "--idle", "600", env=runner_env, timeout=START_S)  # at once if up
    assert up.returncode == 0, up.stderr[-3000:]
    argv = [sys.executable, "-c", _HOLD_SLOT, environment, "killed-run"]
    holder = subprocess.Popen([*argv, "600"], stdout=subprocess.PIPE, text=True, cwd=REPO, env=runner_env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    finally:
        holder.kill()  # kill -9: nothing of the drill's own runs, its lease lives on the server
        holder.wait(timeout=30)
    recovered = _bcdrill("recover", env=runner_env)  # no PREFECT_API_URL: the runner's server is used
    assert recovered.returncode == 0, recovered.stderr
    assert f"killed-run: released the Prefect slot of environment {environment!r}" in recovered.stdout
    # free at once (the lease would have held it for another minute): the next drill takes it
    again = subprocess.run([*argv[:-1], "next-run", "0"], capture_output=True, text=True, timeout=60,
                           cwd=REPO, env=runner_env, check=False)  # fmt: skip
    assert again.returncode == 0 and again.stdout.split() == ["held", "released"], again.stderr[-2000:]


def test_runner_status_and_stop_leave_no_process_behind(runner_env: dict[str, str]) -> None:
    home = Path(runner_env["BCDRILL_HOME"])
    status = _bcdrill("runner", "status", env=runner_env)
    assert status.returncode == 0 and "its own Prefect server" in status.stdout, status.stdout
    before = _processes_of(home)
    assert len(before) >= 3, before  # the daemon, its Prefect server, the warm forkserver
    stopped = _bcdrill("runner", "stop", env=runner_env, timeout=120)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert [pid for pid in before if pid_alive(pid)] == []
    assert _processes_of(home) == []
    assert not (home / "runner" / "runner.json").exists()
    again = _bcdrill("runner", "status", env=runner_env)
    assert again.returncode == 4 and "no bcdrill runner" in again.stdout


def test_a_new_runner_ends_what_a_killed_one_left_and_runs_none_of_it(
    runner_env: dict[str, str], lab_env: Path, tmp_path: Path
) -> None:
    """A drill submitted to a runner that was then killed (kill -9, a reboot) must not run,
    unasked, when the next runner starts: its client was told to run it again."""
    up = _bcdrill("runner", "start", env=runner_env, timeout=START_S)  # a test before may have stopped it
    assert up.returncode == 0, up.stderr[-3000:]
    info = json.loads((Path(runner_env["BCDRILL_HOME"]) / "runner" / "runner.json").read_text())
    ghost_runs = tmp_path / "ghost-runs"
    os.kill(info["pid"], signal.SIGSTOP)  # it takes nothing now; its Prefect server still answers
    try:
        parameters = {
            "playbook_path": str(QUICK),
            "environment_path": str(lab_env),
            "runs_root": str(ghost_runs),
            "responders": "auto",
        }
        request = urllib.request.Request(
            f"{info['url']}/deployments/{info['deployment_id']}/create_flow_run",
            data=json.dumps({"parameters": parameters}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            flow_run = json.loads(answer.read())
    finally:
        os.kill(info["pid"], signal.SIGKILL)
    wait_until("the killed runner to be gone", lambda: not pid_alive(info["pid"]) or None, 30)
    started = _bcdrill("runner", "start", env=runner_env, timeout=START_S)
    assert started.returncode == 0, started.stderr[-3000:]
    url = json.loads((Path(runner_env["BCDRILL_HOME"]) / "runner" / "runner.json").read_text())["url"]
    time.sleep(3.0)  # two of the runner's own polls: a leftover it took would have started by now
    with urllib.request.urlopen(f"{url}/flow_runs/{flow_run['id']}", timeout=30) as answer:
        state = json.loads(answer.read())["state"]
    assert state["type"] == "CANCELLED", state
    assert not ghost_runs.exists() or not any(ghost_runs.iterdir()), "the leftover drill ran"


def test_a_runner_uses_the_api_of_the_callers_default_prefect_profile(
    prefect_api: str, tmp_path: Path
) -> None:
    """`prefect config set PREFECT_API_URL=…` writes ~/.prefect/profiles.toml: the drills must
    take their slots on that server, as in-process runs and site workers do, not on a private one."""
    (tmp_path / ".prefect").mkdir()
    (tmp_path / ".prefect" / "profiles.toml").write_text(
        f'active = "msp"\n[profiles.msp]\nPREFECT_API_URL = "{prefect_api}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BCDRILL_RUNNER"))}
    env.update({"HOME": str(tmp_path), "BCDRILL_HOME": str(tmp_path / "home"), "BCDRILL_PDF": "off"})
    started = _bcdrill("runner", "start", env=env, timeout=START_S)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        info = json.loads((tmp_path / "home" / "runner" / "runner.json").read_text())
        assert (info["url"], info["own_server"]) == (prefect_api, False)
    finally:
        _bcdrill("runner", "stop", env=env)
        for pid in _processes_of(tmp_path / "home"):
            os.kill(pid, signal.SIGKILL)
