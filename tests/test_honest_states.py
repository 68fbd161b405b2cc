"""Prefect states that tell the truth: a drill that did not run never ends green Completed.

The real ``drill-run`` flow against the session's real Prefect server, with the real
``deconflict`` precheck asking a real loopback incident endpoint, apprise telling the
controllers through a real loopback webhook, and the real programme store and ``bcdrill
reveal``. (The postponed case through a real worker and deployment is in test_programme.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.objects import StateType
from prefect.context import FlowRunContext

from drills.programme import deconflict
from drills.programme.deconflict import CurrentRun
from drills.programme.drill_plans import load_plan
from drills.programme.secret_schedule import PlanRequest, ProgrammeStore, RunSettings, pick_new_drills
from engine.flow import drill_run, fast_settings, hold_state
from engine.model.holds import Hold, HoldKind
from tests.conftest import BCDRILL, REPO
from tests.prefect_worker import api_get
from tests.test_deconflict import DEMO_ENV, PLAYBOOK, StatusEndpoint, endpoint, write_plan  # noqa: F401

DEMO_PLAN = REPO / "playbooks" / "plans" / "demo-bakery-2027.yaml"


def _run_flow(plan: Path, runs: Path) -> Any:
    with fast_settings():
        return drill_run(
            playbook_path=str(PLAYBOOK),
            environment_path=str(DEMO_ENV),
            runs_root=str(runs),
            responders="simulate",
            time_scale=0.005,
            plan_path=str(plan),
            return_state=True,
        )


def _flow_run(api: str, state: Any) -> dict[str, Any]:
    return dict(api_get(api, f"/flow_runs/{state.state_details.flow_run_id}"))


def test_hold_states_are_never_completed() -> None:
    held = hold_state(Hold(HoldKind.HELD, "not started: incident open"))
    postponed = hold_state(Hold(HoldKind.POSTPONED, "postponed: incident open; rescheduled as X"))
    dropped = hold_state(Hold(HoldKind.DROPPED, "not delivered: incident open"))
    assert (held.type, held.name) == (StateType.CANCELLED, "Held")
    assert (postponed.type, postponed.name) == (StateType.CANCELLED, "Postponed")
    assert (dropped.type, dropped.name) == (StateType.FAILED, "Not delivered")
    assert held.message == "not started: incident open" and held.data is None
    assert Hold.of("a plain reason") == Hold(HoldKind.HELD, "a plain reason")


@pytest.mark.prefect
def test_held_drill_ends_cancelled_with_its_reason(
    prefect_api: str, tmp_path: Path, endpoint: StatusEndpoint
) -> None:
    today = datetime.now(UTC).date()
    plan = write_plan(
        tmp_path, "held", first=today, last=today + timedelta(days=30), hours={"mon": ["09:00-17:00"]},
        incident_url=f"{endpoint.base}/open",
    )  # fmt: skip
    runs = tmp_path / "runs"
    state = _run_flow(plan, runs)
    assert (state.type, state.name) == (StateType.CANCELLED, "Held")
    flow_run = _flow_run(prefect_api, state)
    assert flow_run["state_type"] == "CANCELLED" and flow_run["state_name"] == "Held"
    assert "incident open" in flow_run["state"]["message"]
    assert not runs.exists() or not any(runs.iterdir())  # nothing ran, nothing was injected


@pytest.mark.prefect
def test_drill_out_of_window_is_not_delivered_escalated_and_revealable(
    prefect_api: str, tmp_path: Path, endpoint: StatusEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("BCDRILL_HOME", str(home))
    hook = f"json://127.0.0.1:{endpoint.server.server_address[1]}/hook"
    # The window closes today: held back by an open incident now, no allowed slot is left.
    today = datetime.now(UTC).date()
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[today.weekday()]
    plan = write_plan(
        tmp_path, "late", first=date(today.year, 1, 1) if today.month > 1 else today, last=today,
        hours={weekday: ["00:00-00:01"]}, drill_length="1m", incident_url=f"{endpoint.base}/open",
        notify=(hook,), client="Late Bakery",
    )  # fmt: skip
    (picked,) = pick_new_drills(
        [PlanRequest(load_plan(DEMO_PLAN), "site-x")],
        (),
        RunSettings(str(tmp_path / "runs"), "simulate", 0.005, 3),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    stored = replace(
        picked, key="late-1", client="Late Bakery", plan=str(plan), flow_run_id="4f7a1c2e-late-drill"
    )
    store = ProgrammeStore()
    store.add([stored])

    def scheduled_run() -> CurrentRun:
        # The flow runs here, not under a worker: stand in for its deployment run.
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        return CurrentRun(stored.flow_run_id, stored.run_name, "0" * 32, "late-1", {})

    monkeypatch.setattr(deconflict, "current_run", scheduled_run)
    state = _run_flow(plan, tmp_path / "runs")

    assert (state.type, state.name) == (StateType.FAILED, "Not delivered")
    flow_run = _flow_run(prefect_api, state)
    assert flow_run["state_type"] == "FAILED" and flow_run["state_name"] == "Not delivered"
    assert "no allowed slot left" in flow_run["state"]["message"]
    # the controllers were told, as an escalation
    ((path, body),) = endpoint.posts
    message = json.loads(body)
    assert path == "/hook" and "NOT DELIVERED" in message["title"]
    assert f"bcdrill reveal {stored.run_name}" in message["message"]
    # recorded: dropped, never to run
    dropped = store.find("late-1")
    assert dropped.dropped and dropped.effective_start is None
    # the commitment opens now, although the drill never ran
    env = {**os.environ, "BCDRILL_HOME": str(home)}
    reveal = subprocess.run(
        [BCDRILL, "reveal", stored.run_name], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert reveal.returncode == 0, reveal.stderr
    assert "verified:   yes" in reveal.stdout and "NOT DELIVERED" in reveal.stdout
    wide = {**env, "COLUMNS": "200"}  # wide enough that the status cell is not wrapped
    calendar = subprocess.run(
        [BCDRILL, "calendar"], capture_output=True, text=True, timeout=60, env=wide, check=False
    )
    assert "NOT DELIVERED" in calendar.stdout


@pytest.mark.prefect
def test_an_official_drill_without_a_key_fails_before_it_takes_the_slot(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow run asked for an official drill where no signing key exists: Failed, saying how to
    make one, before the environment's slot is taken or a run folder is made."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from engine.orchestration.slot import slot_name
    from engine.spec.loader import load_environment

    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BCDRILL_SIGNING_KEY", raising=False)
    runs = tmp_path / "runs"
    with fast_settings():
        state = drill_run(
            playbook_path=str(PLAYBOOK), environment_path=str(DEMO_ENV), runs_root=str(runs),
            responders="manual", run_class="drill", return_state=True,
        )  # fmt: skip
    assert state.type == StateType.FAILED
    flow_run = _flow_run(prefect_api, state)
    assert flow_run["state_type"] == "FAILED" and "bcdrill keys init" in flow_run["state"]["message"]
    assert not runs.exists() or not any(runs.iterdir())
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(slot_name(load_environment(DEMO_ENV).name))
        except ObjectNotFound:
            limit = None
    assert limit is None or limit.active_slots == 0
