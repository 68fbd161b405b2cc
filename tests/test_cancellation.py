"""Cancelling a drill's flow run in Prefect reverts its faults inside Prefect's grace period;
a drill's process killed outright is reported *Crashed*, and ``recover`` frees its environment.

Prefect enforces a cancellation only for runs under a worker: the worker sends SIGTERM to
the flow run's process and SIGKILL 30 s later. These tests run the ``drill-run``
deployment on a real site worker (``bcdrill worker start``: each flow run forked from its warm
forkserver) against the session's Prefect server and the Docker lab, cancel the flow run
through the API the way the UI and ``prefect flow-run cancel`` do, and check the fault was
reverted, verified and journaled well inside that grace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, cast

import docker
import pytest

from drills.programme.prefect_runs import ensure_deployment
from engine.orchestration.slot import slot_name
from engine.testing import wait_until
from tests.conftest import BCDRILL, LAB_NAME, REPO, run_cli
from tests.journal_helpers import debrief, first, records, types, wait_for_record
from tests.prefect_worker import (
    api_get,
    running_worker,
    start_worker,
    stop_worker,
    wait_final,
    wait_started,
    worker_state,
)

PLAYBOOK = REPO / "playbooks" / "storefront-down.yaml"
STOREFRONT = f"bcdrill-{LAB_NAME}-storefront"
POOL = "test-cancel"
BUDGET_S = 25.0  # inside Prefect's 30 s between SIGTERM and SIGKILL

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


def _container_running(name: str) -> bool:
    return bool(docker.from_env().containers.get(name).attrs["State"]["Running"])


def _start_drill_flow_run(deployment: str, lab_env: Path, runs: Path) -> str:
    """A flow run of the deployment, now, with manual responders: nobody acks, the fault stays."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        deployment,
        parameters={
            "playbook_path": str(PLAYBOOK),
            "environment_path": str(lab_env),
            "runs_root": str(runs),
            "responders": "manual",
            "time_scale": 0.5,
        },
        timeout=0,
        as_subflow=False,
    )
    return str(cast(FlowRun, flow_run).id)


def _wait_applied(worker: SiteWorker, api: str, flow_run_id: str, runs: Path) -> Path:
    """The run folder once the drill applied its fault (60 s); if it does not, an error saying
    where the flow run got to, what the journal holds and what the worker did."""
    try:
        return wait_for_record(runs, "fault.applied", timeout_s=60)
    except TimeoutError as exc:
        state = api_get(api, f"/flow_runs/{flow_run_id}")
        journals = {j.parent.name: j.read_text()[-1500:] for j in runs.glob("*/journal.jsonl")}
        detail = f"flow run {state['state_type']}: {state['state']}\njournals: {journals}"
        raise AssertionError(f"{exc}\n{detail}\n{worker_state(worker.process, worker.log)}") from None


def _cancel(flow_run_id: str) -> datetime:
    """Ask Prefect to cancel the run (state Cancelling, as the UI and CLI do); when it was asked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import State, StateType
    from prefect.client.schemas.responses import SetStateStatus

    asked = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        result = client.set_flow_run_state(flow_run_id, State(type=StateType.CANCELLING))
    assert result.status == SetStateStatus.ACCEPT, result.details
    return asked


def _recover_if_left(run_dir: Path | None, runs: Path) -> None:
    """Cleanup after a failed test: never leave the storefront stopped for the next test."""
    if run_dir is not None and not _container_running(STOREFRONT):
        run_cli("recover", run_dir.name, "--runs", str(runs))


class SiteWorker(NamedTuple):
    deployment: str
    home: Path  # its BCDRILL_HOME
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def site_worker(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteWorker]:
    """A site worker on the test pool for the module, started once its pool and deployment
    exist (as an operator sets a site up: ``server deploy``, then ``worker start``)."""
    folder = tmp_path_factory.mktemp("site-worker")
    deployment = ensure_deployment(POOL, REPO)
    with running_worker(folder / "home", POOL, folder / "worker.log") as process:
        yield SiteWorker(deployment, folder / "home", process, folder / "worker.log")


def test_a_site_worker_prints_its_threads_stacks_on_usr1(site_worker: SiteWorker) -> None:
    """What an operator does with a worker that seems stuck: ``kill -USR1`` it, read its log."""
    wait_started(site_worker.log)
    before = site_worker.log.stat().st_size
    os.kill(site_worker.process.pid, signal.SIGUSR1)
    sizes: list[int] = []

    def dumped() -> str | None:
        """The dump once it stopped growing: it is written a thread at a time, and a read may
        catch it half-way. (The kernel hands the signal to any of the worker's threads; when
        that one is not a Python thread, no thread is marked "Current thread".)"""
        with site_worker.log.open("rb") as log:
            log.seek(before)
            text = log.read().decode(errors="replace")
        sizes.append(len(text))
        settled = len(sizes) > 2 and sizes[-1] == sizes[-3]
        return text if settled and "most recent call first" in text and "File " in text else None

    try:
        text = wait_until("the stacks in the worker's log", dumped, timeout_s=10, every_s=0.1)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{worker_state(site_worker.process, site_worker.log)}") from None
    assert "Thread 0x" in text or "Current thread 0x" in text
    assert site_worker.process.poll() is None  # it goes on working


def test_sigterm_stops_a_site_worker_started_with_sigint_ignored(prefect_api: str, tmp_path: Path) -> None:
    """A worker started in the background of a script (SIGINT ignored) still stops on SIGTERM:
    Prefect's worker stops itself through SIGINT."""
    log = tmp_path / "worker.log"
    worker = start_worker(tmp_path / "home", "bcdrill-test-sigint-ignored", log, sigint_ignored=True)
    try:
        wait_started(log)
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            code = worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
        assert code is not None, (
            f"the worker ignored SIGTERM for 20 s: {log.read_text(errors='replace')[-800:]}"
        )
        text = log.read_text(errors="replace")
        assert "stopped!" in text
        # its home has no signing key: it says so at start, not at an official drill's moment
        assert "no signing key here: an official drill" in " ".join(text.split())
    finally:
        stop_worker(worker, log)


def test_prefect_cancellation_reverts_the_fault_within_budget(
    lab_env: Path, prefect_api: str, site_worker: SiteWorker, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    run_dir: Path | None = None
    try:
        flow_run_id = _start_drill_flow_run(site_worker.deployment, lab_env, runs)
        run_dir = _wait_applied(site_worker, prefect_api, flow_run_id, runs)
        assert not _container_running(STOREFRONT)
        asked = _cancel(flow_run_id)
        wait_for_record(runs, "fault.reverted", timeout_s=BUDGET_S + 5)
        final = wait_final(prefect_api, [flow_run_id], time.monotonic() + 40)[flow_run_id]
    finally:
        _recover_if_left(run_dir, runs)
    reverted = first(run_dir, "fault.reverted")
    revert_delay = (datetime.fromisoformat(reverted["at"]) - asked).total_seconds()
    assert 0 < revert_delay < BUDGET_S, f"revert {revert_delay:.2f}s after the cancel request"
    assert reverted["data"]["verified"] is True
    aborted = first(run_dir, "run.aborted")["data"]
    assert aborted["reason"] == "received SIGTERM" and aborted["by"] == "signal"
    kinds = types(run_dir)
    assert kinds.index("fault.applied") < kinds.index("run.aborted") < kinds.index("fault.reverted")
    assert kinds[-1] == "run.ended"
    assert _container_running(STOREFRONT)
    report = debrief(run_dir)
    # stopped from outside before its steps were settled: void, nobody blamed (docs/scoring.md)
    assert report["outcome"] == "void" and report["void_reason"]
    assert not any(s["status"] == "missed" for s in report["steps"])
    assert (report["faults"][0]["id"], report["faults"][0]["revert_verified"]) == ("stop-web", True)
    assert "received SIGTERM" in json.dumps(report)
    assert final["state_type"] == "CANCELLED", final["state"]


def test_a_killed_drill_is_crashed_and_recover_frees_its_environment(
    lab_env: Path, prefect_api: str, site_worker: SiteWorker, tmp_path: Path
) -> None:
    deployment, home = site_worker.deployment, site_worker.home
    runs = tmp_path / "runs"
    run_dir: Path | None = None
    try:
        flow_run_id = _start_drill_flow_run(deployment, lab_env, runs)
        run_dir = _wait_applied(site_worker, prefect_api, flow_run_id, runs)
        started = first(run_dir, "run.started")["data"]
        environment = started["environment"]["name"]
        os.kill(started["pid"], signal.SIGKILL)  # no handler runs, nothing reverts
        final = wait_final(prefect_api, [flow_run_id], time.monotonic() + 30)[flow_run_id]
        # the worker saw its forked process die: Crashed, not Running forever
        assert final["state_type"] == "CRASHED", final["state"]
        assert "-9" in final["state"]["message"], final["state"]
        note = home / "locks" / f"{environment}.slot.json"
        assert json.loads(note.read_text())["pid"] == started["pid"]  # the dead run still holds the slot
        assert not _container_running(STOREFRONT)
        recovered = subprocess.run(
            [BCDRILL, "recover", run_dir.name, "--runs", str(runs)],
            capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
            env={**os.environ, "BCDRILL_HOME": str(home), "COLUMNS": "250"},
        )  # fmt: skip
    finally:
        _recover_if_left(run_dir, runs)
    assert recovered.returncode == 0, recovered.stderr
    assert "reverted stop-web" in recovered.stdout
    assert f"released the Prefect slot of environment {environment!r}" in recovered.stdout
    assert _container_running(STOREFRONT)
    assert _slot_active(environment) == 0 and not note.exists()
    assert records(run_dir)[-1]["type"] != "run.ended"  # the journal stops where the process died


def _slot_active(environment: str) -> int:
    """Slots taken of the environment's Prefect limit."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return int(client.read_global_concurrency_limit_by_name(slot_name(environment)).active_slots)
