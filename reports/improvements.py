"""The client's improvement plan as people manage it: list, assign, close, reopen.

Items live in the client's plan file (:class:`reports.debrief_writer.ImprovementStore`), one
plan per completed official drill. An item is named ``<run id>#<finding>`` (a unique run id
prefix is enough). Every change is logged on the item with who made it, when and why; the
next drill shows a closed item as closed and re-tests the open ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from engine.errors import InputError
from reports.debrief.history import PlanEvent, PlanItem, StoredPlan, item_key

__all__ = ["CHANGES", "PlanRow", "apply_change", "find_item", "plan_rows"]

CHANGES = ("assign", "close", "reopen")


@dataclass(frozen=True)
class PlanRow:
    """One item of the client's plan with its state today."""

    ref: str
    drill: str
    playbook_id: str
    item: PlanItem
    state: str  # open | overdue | closed | re-tested


def _state(plan: StoredPlan, item: PlanItem, settled: set[str], today: date) -> str:
    if item.status == "closed":
        return "closed"
    if item_key(plan.run_id, item.finding) in settled:
        return "re-tested"
    if item.due_by and date.fromisoformat(item.due_by) < today:
        return "overdue"
    return "open"


def plan_rows(plans: tuple[StoredPlan, ...], today: date | None = None) -> list[PlanRow]:
    """Every item of every stored plan, oldest drill first, with its state."""
    day = today or datetime.now(UTC).date()
    settled = {key for plan in plans for key in plan.retested}
    return [
        PlanRow(item_key(p.run_id, i.finding), p.started_at, p.playbook_id, i, _state(p, i, settled, day))
        for p in sorted(plans, key=lambda p: p.order)
        for i in p.items
    ]


def find_item(plans: list[StoredPlan], ref: str) -> tuple[int, int]:
    """Indexes (plan, item) of ``ref`` (``RUN#F3``; a unique run id prefix works)."""
    run, sep, finding = ref.partition("#")
    if not sep or not run or not finding:
        raise InputError(f"item {ref!r}: write it as RUN#FINDING, e.g. 20260302T090000Z-web-down-ab12#F3")
    matches = [
        (pi, ii)
        for pi, plan in enumerate(plans)
        if plan.run_id.startswith(run)
        for ii, item in enumerate(plan.items)
        if item.finding == finding
    ]
    if not matches:
        raise InputError(f"item {ref!r}: no such item in the client's improvement plan")
    if len({pi for pi, _ in matches}) > 1:
        raise InputError(f"item {ref!r}: run prefix {run!r} matches several drills; give more characters")
    return matches[0]


def apply_change(
    plans: list[StoredPlan],
    ref: str,
    change: str,
    by: str,
    note: str = "",
    owner: str | None = None,
    now: datetime | None = None,
) -> list[StoredPlan]:
    """``plans`` with one item assigned, closed or reopened (logged with who, when and why)."""
    if change not in CHANGES:
        raise InputError(f"unknown change {change!r} (known: {', '.join(CHANGES)})")
    if not by.strip():
        raise InputError("say who made the change (--by NAME)")
    pi, ii = find_item(plans, ref)
    item = plans[pi].items[ii]
    if change == "close" and item.status == "closed":
        raise InputError(f"item {ref!r} is already closed")
    if change == "reopen" and item.status != "closed":
        raise InputError(f"item {ref!r} is not closed")
    if change == "assign" and not (owner and owner.strip()):
        raise InputError("assign needs --owner NAME")
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = PlanEvent(
        at=at, by=by.strip(), change=change, note=note, owner=owner if change == "assign" else None
    )
    updated = replace(item, log=(*item.log, event))
    if change == "assign":
        updated = replace(updated, owner=(owner or "").strip())
    else:
        updated = replace(updated, status="closed" if change == "close" else "open")
    items = list(plans[pi].items)
    items[ii] = updated
    result = list(plans)
    result[pi] = replace(plans[pi], items=tuple(items))
    return result
