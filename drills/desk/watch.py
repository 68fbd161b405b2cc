"""``bcdrill watch RUN``: the controller's live view of a run, read from its journal.

:class:`WatchState` folds journal records (pure: no I/O, no clock) into faults, probe states
and each side's steps; :func:`render` draws it with rich; :func:`watch` tails the journal
and refreshes a rich ``Live`` display until ``run.ended``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.model.durations import format_duration
from engine.record.journal import JOURNAL_NAME
from engine.record.runstore import owner_alive

REFRESH_S = 0.25
OWNER_CHECK_S = 2.0


@dataclass
class StepLine:
    """One response step as the watch shows it."""

    key: str
    party: str
    title: str
    within_s: float
    recorded_t: float | None = None
    by: str = ""
    source: str = ""
    out_of_order: bool = False


@dataclass
class FaultLine:
    """One fault's progress."""

    id: str
    action: str
    target: str
    state: str = "planned"
    applied_t: float | None = None
    reverted_t: float | None = None


@dataclass
class WatchState:
    """Everything the watch knows, folded from journal records in order."""

    run_id: str = ""
    title: str = ""
    late_limit: float = 3.0
    start_utc: datetime | None = None
    anchor: float | None = None
    last_t: float = 0.0
    ended: str | None = None
    rejected: int = 0
    steps: dict[str, StepLine] = field(default_factory=dict)
    faults: dict[str, FaultLine] = field(default_factory=dict)
    probes: dict[str, tuple[str, float]] = field(default_factory=dict)

    def apply(self, record: dict[str, Any]) -> None:
        """Fold one journal record in."""
        kind, data, t = record.get("type", ""), record.get("data", {}), float(record.get("t", 0.0))
        self.last_t = max(self.last_t, t)
        if self.start_utc is None and "at" in record:
            self.start_utc = _parse_utc(record["at"]) - timedelta(seconds=t)
        handler = getattr(self, "_on_" + kind.replace(".", "_"), None)
        if handler is not None:
            handler(data, t)

    def now(self, wall: datetime | None = None) -> float:
        """The run's current offset (the end once it ended)."""
        if self.ended is not None or self.start_utc is None:
            return self.last_t
        wall = wall or datetime.now(UTC)
        return max(self.last_t, (wall - self.start_utc).total_seconds())

    def _on_run_started(self, data: dict[str, Any], _t: float) -> None:
        self.run_id = str(data.get("run_id", ""))
        self.title = str(data.get("playbook", {}).get("title", ""))
        self.late_limit = float(data.get("scoring", {}).get("late_limit", 3.0))
        for step in data.get("steps", []):
            self.steps[step["key"]] = StepLine(
                step["key"], step["party"], step["title"], float(step["within_s"])
            )
        for fault in data.get("faults", []):
            self.faults[fault["id"]] = FaultLine(fault["id"], fault["action"], fault["target"])

    def _fault(self, data: dict[str, Any]) -> FaultLine:
        fault_id = str(data.get("fault", "?"))
        return self.faults.setdefault(fault_id, FaultLine(fault_id, str(data.get("action", "?")), "?"))

    def _on_fault_intent(self, data: dict[str, Any], _t: float) -> None:
        self._fault(data).state = "injecting"

    def _on_fault_applied(self, data: dict[str, Any], t: float) -> None:
        line = self._fault(data)
        line.state, line.applied_t = "active", t
        if self.anchor is None:
            self.anchor = t

    def _on_fault_inject_failed(self, data: dict[str, Any], _t: float) -> None:
        self._fault(data).state = "inject failed"

    def _on_fault_reverted(self, data: dict[str, Any], t: float) -> None:
        line = self._fault(data)
        line.state, line.reverted_t = "reverted", t

    def _on_fault_revert_failed(self, data: dict[str, Any], _t: float) -> None:
        self._fault(data).state = "REVERT FAILED"

    def _on_probe_changed(self, data: dict[str, Any], t: float) -> None:
        self.probes[str(data.get("probe"))] = (str(data.get("state")), t)

    def _on_step_recorded(self, data: dict[str, Any], t: float) -> None:
        line = self.steps.get(data.get("step", ""))
        if line is not None:
            acted = data.get("acted_t")  # the client's stamp, when the engine accepted it
            line.recorded_t = float(acted) if isinstance(acted, int | float) else t
            line.by, line.source = str(data.get("by", "")), str(data.get("source", ""))
            line.out_of_order = bool(data.get("out_of_order"))

    def _on_step_corrected(self, data: dict[str, Any], _t: float) -> None:
        """An evaluator moved this step's record to another step: it is open again."""
        line = self.steps.get(data.get("step", ""))
        if line is not None:
            line.recorded_t, line.by, line.source, line.out_of_order = None, "", "", False

    def _on_step_rejected(self, _data: dict[str, Any], _t: float) -> None:
        self.rejected += 1

    def _on_run_ended(self, data: dict[str, Any], _t: float) -> None:
        self.ended = str(data.get("reason", "ended"))

    def step_status(self, line: StepLine, now: float) -> tuple[str, float | None]:
        """(status, seconds since impact) of a step: on time, late, missed, pending or waiting."""
        if self.anchor is None:
            return "waiting", None
        if line.recorded_t is not None:
            elapsed = line.recorded_t - self.anchor
            return ("on time" if elapsed <= line.within_s else "late"), elapsed
        elapsed = now - self.anchor
        if elapsed > line.within_s * self.late_limit:
            return "missed", elapsed
        return ("overdue" if elapsed > line.within_s else "pending"), elapsed


_STYLES = {
    "on time": "green",
    "late": "yellow",
    "missed": "red",
    "overdue": "yellow",
    "up": "green",
    "down": "red",
    "active": "red",
    "reverted": "green",
    "REVERT FAILED": "bold red",
}


def render(state: WatchState, now: float) -> RenderableType:
    """The watch screen for ``state`` at run offset ``now``."""
    since = "" if state.anchor is None else f" · impact +{format_duration(now - state.anchor)}"
    status = (
        f"ENDED: {state.ended}" if state.ended is not None else f"running, t={format_duration(now)}{since}"
    )
    header = Text(f"{state.title or state.run_id} — {status}", style="bold")
    parts: list[RenderableType] = [header, _faults_table(state), _probes_table(state, now)]
    for party in ("msp", "client"):
        parts.append(_steps_table(state, party, now))
    if state.rejected:
        parts.append(Text(f"{state.rejected} ack(s) rejected (see step.rejected in the journal)"))
    return Group(*parts)


def _faults_table(state: WatchState) -> Table:
    table = Table(
        "fault", "action", "target", "state", "applied", "reverted", title="faults", title_justify="left"
    )
    for line in state.faults.values():
        table.add_row(
            line.id,
            line.action,
            line.target,
            Text(line.state, style=_STYLES.get(line.state, "")),
            _at(line.applied_t),
            _at(line.reverted_t),
        )
    return table


def _probes_table(state: WatchState, now: float) -> Table:
    table = Table("probe", "state", "for", title="probes", title_justify="left")
    for probe, (value, since) in sorted(state.probes.items()):
        table.add_row(probe, Text(value, style=_STYLES.get(value, "")), format_duration(now - since))
    return table


def _steps_table(state: WatchState, party: str, now: float) -> Table:
    table = Table("step", "target", "elapsed", "status", "by", title=f"{party} steps", title_justify="left")
    for line in (s for s in state.steps.values() if s.party == party):
        status, elapsed = state.step_status(line, now)
        flag = " (out of order)" if line.out_of_order else ""
        table.add_row(
            f"{line.key}  {line.title}",
            format_duration(line.within_s),
            format_duration(elapsed),
            Text(status + flag, style=_STYLES.get(status, "")),
            f"{line.by} ({line.source})" if line.by else "",
        )
    return table


def _at(t: float | None) -> str:
    return "—" if t is None else f"t+{format_duration(t)}"


def _parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class JournalTail:
    """Reads complete new lines of a journal as it grows (no hash check: a live view)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read_new(self) -> list[dict[str, Any]]:
        """Records appended since the last call."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


def watch(run_dir: Path, console: Console, once: bool = False) -> WatchState:
    """Show the run live until it ends (or once with ``once``); returns the final state."""
    state = WatchState()
    tail = JournalTail(run_dir / JOURNAL_NAME)
    for record in tail.read_new():
        state.apply(record)
    if once or state.ended is not None:
        console.print(render(state, state.now()))
        return state
    next_owner_check = time.monotonic() + OWNER_CHECK_S
    with Live(render(state, state.now()), console=console, refresh_per_second=4) as live:
        while state.ended is None:
            time.sleep(REFRESH_S)
            for record in tail.read_new():
                state.apply(record)
            live.update(render(state, state.now()))
            if time.monotonic() >= next_owner_check:
                next_owner_check = time.monotonic() + OWNER_CHECK_S
                if not owner_alive(run_dir) and state.ended is None:
                    state.ended = "the run's process is gone without ending the run (try bcdrill recover)"
                    live.update(render(state, state.now()))
    return state
