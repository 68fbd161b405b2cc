"""Deconfliction: never start a drill while a real incident is open; postpone it instead.

Registered as the ``deconflict`` precheck (``bcdrill.prechecks``): the ``drill-run`` flow of
a scheduled drill calls :func:`precheck` with its plan just before anything is injected. If
the plan's incident check says a real incident is open — or cannot tell — the drill is
held: a new flow run is created at the next allowed slot, the postponement is recorded in
the programme store, and the controllers (only they: the plan's ``notify`` URLs) are told.
Responders are never notified.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from drills.commitment import neutral_run_name
from drills.plan import DrillPlan, IncidentCheck, load_plan
from drills.programme import Postponement, ProgrammeStore, StoredDrill, now_utc
from drills.schedule import MINUTE, allowed_minutes
from engine.errors import InputError

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class IncidentStatus:
    """The answer of a plan's incident check: ``open`` (or unknown: treated as open)."""

    open: bool
    detail: str


def check_incident(check: IncidentCheck, timeout_s: float = CHECK_TIMEOUT_S) -> IncidentStatus:
    """Ask the plan's status URL whether a real incident is open.

    Open when the JSON answer's field equals the plan's value. An answer that cannot be
    read (unreachable, HTTP error, not JSON, field missing) counts as open: better a
    postponed drill than a drill on top of a real outage.
    """
    try:
        answer = _fetch_json(check.http, timeout_s)
    except (OSError, ValueError) as exc:
        return IncidentStatus(True, f"incident check {check.http!r} cannot tell: {exc}")
    if not isinstance(answer, dict) or check.json_field not in answer:
        return IncidentStatus(
            True, f"incident check {check.http!r} answered without field {check.json_field!r}"
        )
    value = answer[check.json_field]
    is_open = _same(value, check.equals)
    state = "open" if is_open else "closed"
    return IncidentStatus(is_open, f"{check.json_field}={value!r} at {check.http}: incident {state}")


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python would say it is), ``1`` is ``1.0``."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    return bool(value == expected)


def _fetch_json(url: str, timeout_s: float) -> Any:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - scheme checked
        body = response.read(MAX_ANSWER_BYTES + 1)
    if len(body) > MAX_ANSWER_BYTES:
        raise ValueError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
    return json.loads(body)


def next_slot(plan: DrillPlan, not_before: datetime) -> datetime | None:
    """The first allowed drill start at or after ``not_before``; None when the window is used up."""
    first = -(-int(not_before.timestamp()) // MINUTE)
    for start, end in allowed_minutes(plan).runs:
        if end > first:
            return datetime.fromtimestamp(max(start, first) * MINUTE, UTC)
    return None


def notify_controllers(urls: tuple[str, ...], title: str, body: str) -> bool:
    """Send ``title``/``body`` to the controllers' apprise URLs; only log when there are none.

    Returns whether a notification was delivered.
    """
    if not urls:
        log.warning("deconflict.notify_skipped", reason="no notify URLs in the plan", title=title)
        return False
    try:
        import apprise
    except ImportError:
        log.warning("deconflict.notify_skipped", reason="apprise is not installed", title=title)
        return False
    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    delivered = bool(sender.notify(title=title, body=body))
    log.info("deconflict.notified", delivered=delivered, targets=len(urls))
    return delivered


# ---------------------------------------------------------------- the precheck


@dataclass(frozen=True)
class CurrentRun:
    """The flow run being held back: its id, name, deployment, key and parameters."""

    flow_run_id: str
    name: str
    deployment_id: str
    idempotency_key: str
    parameters: dict[str, Any]


def precheck(plan_path: str) -> str | None:
    """Go ahead (None), or postpone the drill when a real incident is open (the reason)."""
    plan = load_plan(Path(plan_path))
    if plan.incident_check is None:
        return None
    status = check_incident(plan.incident_check)
    if not status.open:
        log.info("deconflict.clear", detail=status.detail)
        return None
    run = current_run()
    if run is None:
        return f"not started: {status.detail} (not a scheduled flow run, nothing rescheduled)"
    return postpone(plan, run, status.detail)


def current_run() -> CurrentRun | None:
    """The Prefect flow run this code runs in, when it belongs to a deployment."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    if flow_run is None or flow_run.deployment_id is None:
        return None
    return CurrentRun(
        flow_run_id=str(flow_run.id),
        name=flow_run.name,
        deployment_id=str(flow_run.deployment_id),
        idempotency_key=flow_run.idempotency_key or str(flow_run.id),
        parameters=dict(flow_run.parameters),
    )


def postpone(plan: DrillPlan, run: CurrentRun, reason: str, now: datetime | None = None) -> str:
    """Reschedule ``run`` at the plan's next slot, record it, tell the controllers; the reason."""
    moment = now or now_utc()
    start = next_slot(plan, moment + timedelta(seconds=plan.drill_length_s))
    name = neutral_run_name() if start else None
    new_id = _reschedule(run, start, name) if start and name else None
    postponement = Postponement(moment, reason, start, name, new_id)
    recorded = _record(run, postponement)
    where = f"rescheduled as {name}" if name else "no allowed slot left in the window"
    title = f"Drill {run.name} for {plan.client} postponed: real incident"
    body = f"{reason}\n{where}" + (f" at {start.isoformat()}" if start else "")
    body += "" if recorded else "\n(not recorded: no programme store entry on the worker)"
    notify_controllers(plan.notify, title, body)
    log.warning("deconflict.postponed", run=run.name, new_run=name, recorded=recorded)
    return f"postponed: {reason}; {where}"


def _reschedule(run: CurrentRun, start: datetime, name: str) -> str:
    from uuid import UUID

    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    count = run.idempotency_key.count(":postponed")
    flow_run = run_deployment(
        UUID(run.deployment_id),
        parameters=run.parameters,
        scheduled_time=start,
        flow_run_name=name,
        timeout=0,
        idempotency_key=f"{run.idempotency_key}:postponed{count + 1}",
        as_subflow=False,
    )
    if not isinstance(flow_run, FlowRun):  # pragma: no cover - sync call returns the run
        raise InputError("run_deployment returned no flow run")
    return str(flow_run.id)


def _record(run: CurrentRun, postponement: Postponement) -> bool:
    store = ProgrammeStore()
    try:
        drill = store.find(run.flow_run_id)
    except InputError:
        return False

    def add(stored: StoredDrill) -> StoredDrill:
        return replace(stored, postponements=(*stored.postponements, postponement))

    store.update(drill.key, add)
    return True
