"""Carry improvements across drills and compare with the previous drill: pure functions.

After each debrief its improvement plan is stored per client (see
:mod:`reports.debrief_writer`). The next debrief of that client gets every still-open item
and says whether this drill tested the same thing again (the same step, objective or fault)
and how it went: ``improved``, ``same`` or ``worse``. An item re-tested once is closed; the
new drill's own findings start the next plan. The business figures (person-hours and cost
lost, the score) are compared with the previous drill of the same client and scenario.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from reports.debrief.model import (
    Comparison,
    Debrief,
    FollowUp,
    FollowUpResult,
    Measure,
    Message,
    Party,
    from_plain,
    plain,
)
from reports.debrief.summary import COMPLETED, RunSummary

PLAN_FORMAT = "bcdrill/improvements/v1"


@dataclass(frozen=True)
class PlanEvent:
    """A change people made to a plan item: assigned, closed or reopened, by whom and why."""

    at: str
    by: str
    change: str  # assign | close | reopen
    note: str = ""
    owner: str | None = None  # the new owner, for ``assign``


@dataclass(frozen=True)
class PlanItem:
    """One improvement as stored after a drill, with how the tested thing went then."""

    finding: str
    subject: str
    owner_party: Party
    action: str
    action_msg: Message | None
    due_in_days: int
    baseline: Measure
    owner: str | None = None
    due_by: str | None = None
    status: str = "open"  # open | closed (closed by hand; re-tested items close when carried)
    log: tuple[PlanEvent, ...] = ()

    @property
    def closed_note(self) -> str | None:
        """The note of the latest ``close``, when the item is closed."""
        closes = [e for e in self.log if e.change == "close"]
        return closes[-1].note if self.status == "closed" and closes else None


@dataclass(frozen=True)
class StoredPlan:
    """The improvement plan of one drill, and which earlier items that drill re-tested."""

    run_id: str
    playbook_id: str
    started_at: str
    items: tuple[PlanItem, ...]
    retested: tuple[str, ...]  # "<run id>#<finding id>" of earlier items tested again
    time_scale: float = 1.0

    @property
    def order(self) -> tuple[str, str]:
        """Sort key: start time, then run id."""
        return (self.started_at, self.run_id)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        data = plain(self)
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoredPlan:
        """Rebuild a stored plan; ``ValueError`` names a missing field."""
        plan = from_plain(cls, data, "$")
        assert isinstance(plan, StoredPlan)
        return plan


@dataclass(frozen=True)
class History:
    """What a debrief is compared with: the client's stored plans and its previous drill."""

    plans: tuple[StoredPlan, ...] = ()
    previous: RunSummary | None = None  # previous drill of the same client and playbook


def counts_for_history(debrief: Debrief) -> bool:
    """True for a completed official drill: only these feed trends, comparisons and plans."""
    return debrief.run_class == "drill" and debrief.outcome in COMPLETED


def item_key(run_id: str, finding: str) -> str:
    """How a plan item is named across drills."""
    return f"{run_id}#{finding}"


# ---------------------------------------------------------------- measuring a subject


def _has_finding(debrief: Debrief, subject: str) -> bool:
    return any(f.subject == subject for f in debrief.findings)


def _occurrence(debrief: Debrief, subject: str) -> Measure:
    status = "occurred" if _has_finding(debrief, subject) else "absent"
    return Measure(status, None, None)


def _step_measure(debrief: Debrief, key: str) -> Measure | None:
    for step in debrief.steps:
        if f"{step.party}.{step.id}" == key and step.status != "not_exercised":
            return Measure(step.status, step.actual_s, step.score)
    return None


def _objective_measure(debrief: Debrief, name: str) -> Measure | None:
    objective = getattr(debrief.objectives, name, None)
    if objective is None or (objective.met is None and objective.actual_s is None):
        return None
    status = "measured" if objective.met is None else ("met" if objective.met else "not_met")
    return Measure(status, objective.actual_s, None)


def _fault_measure(debrief: Debrief, subject: str, applied_only: bool) -> Measure | None:
    _, action, target = subject.split(":", 2)
    tried = [
        f
        for f in debrief.faults
        if f.action == action and f.target == target and (f.applied_at is not None or not applied_only)
    ]
    return _occurrence(debrief, subject) if tried else None


def measure(debrief: Debrief, subject: str) -> Measure | None:
    """How ``subject`` went in ``debrief``; ``None`` when this drill did not test it."""
    kind, _, rest = subject.partition(":")
    if kind == "step":
        return _step_measure(debrief, rest)
    if kind == "objective":
        return _objective_measure(debrief, rest)
    if kind in ("fault", "inject") and rest.count(":") >= 1:
        return _fault_measure(debrief, subject, applied_only=kind == "fault")
    if kind == "drill":
        return _occurrence(debrief, subject)
    return None


def _rank(value: Measure) -> float:
    """Lower is better: a missing time (never recovered, never done) ranks worst."""
    return float("inf") if value.value_s is None else round(value.value_s)


def verdict(before: Measure, after: Measure | None) -> FollowUpResult:
    """``improved``, ``same`` or ``worse`` — or ``not_retested`` when there is no new measure."""
    if after is None:
        return "not_retested"
    if after.status in ("occurred", "absent"):
        return "improved" if after.status == "absent" else "same"
    if before.score is not None and after.score is not None:
        delta = round(after.score - before.score, 1)
    else:
        delta = _rank(before) - _rank(after) if _rank(before) != _rank(after) else 0.0
    if delta > 0:
        return "improved"
    return "worse" if delta < 0 else "same"


# ---------------------------------------------------------------- plans


def baseline(debrief: Debrief, subject: str) -> Measure:
    """How ``subject`` went in the drill that raised it (a drill problem simply occurred)."""
    return measure(debrief, subject) or Measure("occurred", None, None)


def plan_of(debrief: Debrief) -> StoredPlan:
    """The plan to store after ``debrief``: its improvements and the items it re-tested."""
    items = tuple(
        PlanItem(
            finding=i.finding,
            subject=i.subject,
            owner_party=i.owner_party,
            action=i.action,
            action_msg=i.action_msg,
            due_in_days=i.due_in_days,
            baseline=baseline(debrief, i.subject),
            owner=i.owner,
            due_by=i.due_by,
        )
        for i in debrief.improvements
    )
    # carried items are settled by this drill: re-tested ones, and those closed by hand
    retested = tuple(
        item_key(f.from_run, f.finding) for f in debrief.follow_up if f.retested or f.result == "closed"
    )
    return StoredPlan(
        debrief.run_id, debrief.playbook.id, debrief.started_at, items, retested, debrief.time_scale
    )


def keep_changes(old: StoredPlan, new: StoredPlan) -> StoredPlan:
    """``new`` (the same run's plan, written again) with the owner, status and log people set."""
    by_finding = {i.finding: i for i in old.items}
    items = tuple(
        replace(i, owner=prior.owner, status=prior.status, log=prior.log)
        if (prior := by_finding.get(i.finding)) is not None and prior.log
        else i
        for i in new.items
    )
    return replace(new, items=items)


def open_items(plans: Iterable[StoredPlan], debrief: Debrief) -> list[tuple[StoredPlan, PlanItem]]:
    """Items of plans before ``debrief`` that no drill since has re-tested, oldest first."""
    current = (debrief.started_at, debrief.run_id)
    earlier = sorted(
        (p for p in plans if p.order < current and p.run_id != debrief.run_id), key=lambda p: p.order
    )
    closed = {key for plan in earlier for key in plan.retested}
    return [
        (plan, item)
        for plan in earlier
        for item in plan.items
        if item.subject and item_key(plan.run_id, item.finding) not in closed
    ]


def follow_up(debrief: Debrief, plans: Iterable[StoredPlan]) -> tuple[FollowUp, ...]:
    """Each open improvement of the client and how this drill re-tested it (or not)."""
    result: list[FollowUp] = []
    for plan, item in open_items(plans, debrief):
        if item.status == "closed":
            result.append(_closed(plan, item))
            continue
        # a measure taken at another time scale is not comparable: the item is not re-tested
        after = measure(debrief, item.subject) if plan.time_scale == debrief.time_scale else None
        result.append(
            FollowUp(
                from_run=plan.run_id,
                from_started_at=plan.started_at,
                finding=item.finding,
                subject=item.subject,
                owner_party=item.owner_party,
                action=item.action,
                action_msg=item.action_msg,
                retested=after is not None,
                result=verdict(item.baseline, after),
                before=item.baseline,
                after=after,
                owner=item.owner,
            )
        )
    return tuple(result)


def _closed(plan: StoredPlan, item: PlanItem) -> FollowUp:
    """An item closed by hand since its drill: shown once more, as closed, then settled."""
    return FollowUp(
        from_run=plan.run_id,
        from_started_at=plan.started_at,
        finding=item.finding,
        subject=item.subject,
        owner_party=item.owner_party,
        action=item.action,
        action_msg=item.action_msg,
        retested=False,
        result="closed",
        before=item.baseline,
        after=None,
        owner=item.owner,
        closed_note=item.closed_note,
    )


# ---------------------------------------------------------------- comparison


def _change_pct(before: float, after: float) -> float | None:
    return None if before <= 0 else (after - before) / before * 100.0


def compare(previous: RunSummary, debrief: Debrief) -> Comparison:
    """This drill's score, person-hours and cost against the previous drill's."""
    current = RunSummary.of(debrief)
    score_change = None if previous.score is None or current.score is None else current.score - previous.score
    return Comparison(
        previous_run=previous.run_id,
        previous_started_at=previous.started_at,
        days_between=(current.started - previous.started).total_seconds() / 86400.0,
        previous_score=previous.score,
        previous_outage_s=previous.outage_s,
        previous_person_hours=previous.person_hours,
        previous_cost=previous.cost,
        score_change=score_change,
        person_hours_change_pct=_change_pct(previous.person_hours, current.person_hours),
        cost_change_pct=_change_pct(previous.cost, current.cost),
    )


def with_history(debrief: Debrief, history: History | None) -> Debrief:
    """``debrief`` with its follow-up of earlier improvements and its comparison filled in.

    Only a completed official drill is compared, and only with a drill at the same time
    scale (times at another scale are not comparable: no comparison rather than a wrong one).
    """
    if history is None or not counts_for_history(debrief):
        return debrief
    previous = history.previous
    comparable = previous is not None and previous.counts and previous.time_scale == debrief.time_scale
    comparison = compare(previous, debrief) if comparable and previous is not None else None
    return replace(debrief, follow_up=follow_up(debrief, history.plans), comparison=comparison)
