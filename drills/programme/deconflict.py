"""Deconfliction: never start a drill while a real incident is open; postpone it instead.

Registered as the ``deconflict`` precheck (``bcdrill.prechecks``): the ``drill-run`` flow of
a scheduled drill calls :func:`precheck` with its plan just before anything is injected. If
the plan's incident check (an HTTP status or incident-tool URL answering JSON, or a command
answering by its exit status) says a real incident is open — or cannot tell — the drill is
postponed: a new flow run is created at the next allowed slot, the postponement is recorded
in the programme store, and the controllers (only they: the plan's ``notify`` URLs) are told.
With no allowed slot left the drill is dropped ("not delivered") and the controllers are
told so. The flow run ends Cancelled ("Postponed") or Failed ("Not delivered"), never
Completed (:mod:`engine.model.holds`). Responders are never notified.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import structlog

from drills.programme.commitment import neutral_run_name
from drills.programme.drill_plans import (
    CommandIncidentCheck,
    DrillPlan,
    HttpIncidentCheck,
    IncidentCheck,
    load_plan,
)
from drills.programme.prefect_runs import CurrentRun, current_run, reschedule
from drills.programme.schedule import MINUTE, allowed_minutes
from drills.programme.secret_schedule import Postponement, ProgrammeStore, StoredDrill, now_utc
from engine.errors import InputError
from engine.model.holds import Hold, HoldKind

log = structlog.get_logger(__name__)

MAX_ANSWER_BYTES = 64 * 1024
MAX_OUTPUT_BYTES = 4096
MAX_QUOTED_CHARS = 200


@dataclass(frozen=True)
class IncidentStatus:
    """The answer of a plan's incident check: ``open`` (or unknown: treated as open)."""

    open: bool
    detail: str


def check_incident(check: IncidentCheck, timeout_s: float | None = None) -> IncidentStatus:
    """Ask the plan's incident check whether a real incident is open.

    ``timeout_s`` overrides the check's own timeout. An answer that cannot be read counts
    as open: better a postponed drill than a drill on top of a real outage.
    """
    limit = check.timeout_s if timeout_s is None else timeout_s
    if isinstance(check, CommandIncidentCheck):
        return _ask_command(check, limit)
    return _ask_http(check, limit)


def _ask_http(check: HttpIncidentCheck, timeout_s: float) -> IncidentStatus:
    """Open when the JSON answer's field equals the plan's value; unreadable answers are open.

    Unreadable: unreachable, HTTP error, not JSON, larger than 64 KiB, field missing.
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


def _ask_command(check: CommandIncidentCheck, timeout_s: float) -> IncidentStatus:
    """Exit 0: open; exit 1: clear; anything else (other status, no start, timeout): open.

    Messages name the program only, never its arguments (they may carry secrets), and
    quote the first line it printed.
    """
    name = f"incident command {check.program!r}"
    try:
        code, said = run_check_command(check.command, timeout_s, check.workdir)
    except subprocess.TimeoutExpired:
        return IncidentStatus(True, f"{name} cannot tell: no answer within {timeout_s:g}s (stopped)")
    except OSError as exc:
        return IncidentStatus(True, f"{name} cannot tell: {exc}")
    quoted = f" ({said!r})" if said else ""
    if code == 0:
        return IncidentStatus(True, f"{name} exited 0{quoted}: incident open")
    if code == 1:
        return IncidentStatus(False, f"{name} exited 1{quoted}: incident closed")
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return IncidentStatus(True, f"{name} cannot tell: {how}{quoted} (0 = open, 1 = clear)")


def run_check_command(argv: Sequence[str], timeout_s: float, workdir: Path | None = None) -> tuple[int, str]:
    """Run ``argv`` without a shell; its exit status and the first line of its output.

    The command runs in its own process group, which is killed when the command ends or its
    ``timeout_s`` passes (then :class:`subprocess.TimeoutExpired` is raised): nothing it
    started is left behind. Output is read as it comes, keeping only the first bytes, so a
    chatty command cannot fill memory or block on a full pipe.
    """
    proc = subprocess.Popen(  # an argv list from the plan: no shell ever parses it
        list(argv),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    head = bytearray()
    reader = threading.Thread(target=_read_head, args=(proc.stdout, head), daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout_s)
    finally:
        _kill_group(proc.pid)
        proc.wait()
        reader.join(timeout=1.0)
    return code, _first_line(bytes(head))


def _read_head(stream: IO[bytes], head: bytearray) -> None:
    """Keep the first :data:`MAX_OUTPUT_BYTES` of ``stream``, drain the rest, then close it."""
    with stream:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            head += chunk[: max(0, MAX_OUTPUT_BYTES - len(head))]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _first_line(output: bytes) -> str:
    for line in output.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()[:MAX_QUOTED_CHARS]
    return ""


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
    first = math.ceil(not_before.timestamp() / MINUTE)  # 10:10:00.3 is after 10:10, not at it
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


def precheck(plan_path: str) -> Hold | None:
    """Go ahead (None), or hold the drill back when a real incident is open: postponed to the
    next allowed slot, dropped when none is left, held when it is not a scheduled flow run."""
    plan = load_plan(Path(plan_path))
    if plan.incident_check is None:
        return None
    status = check_incident(plan.incident_check)
    if not status.open:
        log.info("deconflict.clear", detail=status.detail)
        return None
    run = current_run()
    if run is None:
        reason = f"not started: {status.detail} (not a scheduled flow run, nothing rescheduled)"
        return Hold(HoldKind.HELD, reason)
    return postpone(plan, run, status.detail)


def postpone(plan: DrillPlan, run: CurrentRun, reason: str, now: datetime | None = None) -> Hold:
    """Reschedule ``run`` at the plan's next slot, record it, tell the controllers.

    When no allowed slot is left in the window the contracted drill is dropped — not
    delivered this period: recorded, escalated to the controllers, and the flow run ends
    Failed ("Not delivered") instead of quietly waiting for a slot that never comes.
    """
    moment = now or now_utc()
    start = next_slot(plan, moment + timedelta(seconds=plan.drill_length_s))
    name = neutral_run_name() if start else None
    new_id = reschedule(run, start, name) if start and name else None
    postponement = Postponement(moment, reason, start, name, new_id)
    recorded = _record(run, postponement)
    unrecorded = "" if recorded else "\n(not recorded: no programme store entry on the worker)"
    if start is None:
        title = f"Drill {run.name} for {plan.client} NOT DELIVERED: no allowed slot left in its window"
        body = (
            f"{reason}\nThe drill was held back and its window has no allowed slot left: it will not"
            f" run this period. Agree a new window with {plan.client} and schedule it again."
            f"\nThe commitment can be opened now: bcdrill reveal {run.name}{unrecorded}"
        )
        notify_controllers(plan.notify, title, body)
        log.error("deconflict.dropped", run=run.name, client=plan.client, recorded=recorded, reason=reason)
        return Hold(HoldKind.DROPPED, f"not delivered: {reason}; no allowed slot left in the window")
    title = f"Drill {run.name} for {plan.client} postponed: real incident"
    body = f"{reason}\nrescheduled as {name} at {start.isoformat()}{unrecorded}"
    notify_controllers(plan.notify, title, body)
    log.warning("deconflict.postponed", run=run.name, new_run=name, recorded=recorded)
    return Hold(HoldKind.POSTPONED, f"postponed: {reason}; rescheduled as {name}")


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
