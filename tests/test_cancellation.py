"""Cancelling a drill's flow run in Prefect reverts its faults inside Prefect's grace period.

Prefect enforces a cancellation only for runs under a worker: the worker sends SIGTERM to
the flow run's process group and SIGKILL 30 s later. This test runs the ``drill-run``
deployment on a real process worker against the session's Prefect server and the Docker
lab, cancels the flow run through the API the way the UI and ``prefect flow-run cancel``
do, and checks the fault was reverted, verified and journaled well inside that grace.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import docker
import pytest

from drills.programme.prefect_runs import ensure_deployment
from tests.conftest import LAB_NAME, REPO, run_cli
from tests.journal_helpers import debrief, first, types, wait_for_record
from tests.prefect_worker import running_worker, wait_final

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


def test_prefect_cancellation_reverts_the_fault_within_budget(
    lab_env: Path, prefect_api: str, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    run_dir: Path | None = None
    with running_worker(tmp_path / "home", POOL, tmp_path / "worker.log"):
        deployment = ensure_deployment(POOL, REPO)
        try:
            flow_run_id = _start_drill_flow_run(deployment, lab_env, runs)
            run_dir = wait_for_record(runs, "fault.applied", timeout_s=60)
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
