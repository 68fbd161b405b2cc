"""Findings (what went wrong, with journal evidence) and the improvement plan (one per finding).

Findings come in a fixed order: drill-level problems first (abort, preflight, reverts, restore,
injections), then missed objectives, then late or missed steps in playbook order. Ids are
``F1``, ``F2``… in that order, so the same journal always gives the same plan.

Every text is a catalogue :class:`~reports.debrief.model.Message` (see :mod:`reports.i18n`); the
English form is stored next to it. Each finding names its ``subject`` (``step:msp.inform``,
``objective:rto``, ``fault:docker.stop:web-1``, ``drill:aborted``…) so that the next drill
of the client can tell whether it was tested again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reports.debrief.facts import FaultTrack, RunFacts
from reports.debrief.model import (
    Finding,
    FindingParty,
    Improvement,
    Message,
    MessageParam,
    ObjectiveResults,
    Party,
    Severity,
    StepResult,
)
from reports.debrief.scoring import revert_problem
from reports.i18n import translator

DUE_IN_DAYS: dict[Severity, int] = {"critical": 1, "high": 14, "medium": 30, "low": 60}


def msg(key: str, **params: MessageParam) -> Message:
    """A catalogue message (keys are checked against the catalogues by the tests)."""
    return Message(key, params)


@dataclass(frozen=True)
class _Draft:
    """A finding before it gets its id, with the action that addresses it."""

    severity: Severity
    party: FindingParty
    subject: str
    title: Message
    evidence: Message
    owner: Party
    action: Message


def _abort_draft(facts: RunFacts) -> list[_Draft]:
    if facts.aborted is None:
        return []
    reason = facts.aborted.reason
    evidence = (
        msg("finding.aborted.evidence_by", by=facts.aborted.by, reason=reason)
        if facts.aborted.by
        else msg("finding.aborted.evidence", reason=reason)
    )
    return [
        _Draft(
            "high",
            "drill",
            "drill:aborted",
            msg("finding.aborted.title"),
            evidence,
            "msp",
            msg("finding.aborted.action"),
        )
    ]


def _preflight_drafts(facts: RunFacts) -> list[_Draft]:
    drafts: list[_Draft] = []
    if facts.preflight_failed is not None:
        drafts.append(
            _Draft(
                "high",
                "drill",
                "drill:preflight",
                msg("finding.preflight.title"),
                msg("finding.preflight.evidence", reason=facts.preflight_failed.reason),
                "msp",
                msg("finding.preflight.action"),
            )
        )
    applied = any(f.applied_t is not None for f in facts.faults)
    explained = facts.preflight_failed or facts.aborted or any(f.inject_error for f in facts.faults)
    if not applied and not explained:
        drafts.append(
            _Draft(
                "high",
                "drill",
                "drill:no_fault",
                msg("finding.no_fault.title"),
                msg("finding.no_fault.evidence", count=len(facts.faults)),
                "msp",
                msg("finding.no_fault.action"),
            )
        )
    return drafts


def _revert_evidence(fault: FaultTrack) -> Message:
    """The evidence of a revert problem; mirrors :func:`reports.debrief.scoring.revert_problem`."""
    where = {"action": fault.action, "target": fault.target or "?"}
    if fault.reverted_t is None and fault.revert_error is not None:
        return msg("finding.revert.failed.evidence", error=fault.revert_error, **where)
    if fault.reverted_t is None:
        return msg("finding.revert.none.evidence", **where)
    if fault.verified is not True:
        return msg("finding.revert.unverified.evidence", **where)
    if fault.revert_error is not None:
        key = "recovered" if fault.recovered else "retried"
        return msg(f"finding.revert.{key}.evidence", error=fault.revert_error, **where)
    return msg("finding.revert.late.evidence", **where)


def _revert_draft(fault: FaultTrack) -> _Draft | None:
    problem = revert_problem(fault)
    if problem is None:
        return None
    subject = f"fault:{fault.action}:{fault.target}"
    params: dict[str, MessageParam] = {
        "fault": fault.id,
        "action": fault.action,
        "target": fault.target or "?",
    }
    if problem.remains:
        return _Draft(
            "critical",
            "drill",
            subject,
            msg("finding.revert.remains.title", **params),
            _revert_evidence(fault),
            "msp",
            msg("finding.revert.remains.action", **params),
        )
    return _Draft(
        "high",
        "drill",
        subject,
        msg("finding.revert.later.title", **params),
        _revert_evidence(fault),
        "msp",
        msg("finding.revert.later.action", **params),
    )


def _engine_drafts(facts: RunFacts) -> list[_Draft]:
    drafts: list[_Draft] = []
    if facts.run_failed is not None:
        drafts.append(
            _Draft(
                "high",
                "drill",
                "drill:run_failed",
                msg("finding.run_failed.title"),
                msg("finding.run_failed.evidence", reason=facts.run_failed.reason),
                "msp",
                msg("finding.run_failed.action"),
            )
        )
    if facts.restore_failed is not None:
        drafts.append(
            _Draft(
                "critical",
                "drill",
                "drill:restore",
                msg("finding.restore.title"),
                msg("finding.restore.evidence", reason=facts.restore_failed.reason),
                "msp",
                msg("finding.restore.action"),
            )
        )
    for fault in facts.faults:
        if fault.inject_error is None:
            continue
        params: dict[str, MessageParam] = {
            "fault": fault.id,
            "action": fault.action,
            "target": fault.target or "?",
        }
        drafts.append(
            _Draft(
                "medium",
                "drill",
                f"inject:{fault.action}:{fault.target}",
                msg("finding.inject.title", **params),
                msg("finding.inject.evidence", error=fault.inject_error, **params),
                "msp",
                msg("finding.inject.action", **params),
            )
        )
    return drafts


def _drill_drafts(facts: RunFacts) -> list[_Draft]:
    drafts = _abort_draft(facts) + _preflight_drafts(facts)
    drafts += [d for f in facts.faults if (d := _revert_draft(f)) is not None]
    return drafts + _engine_drafts(facts)


def _objective_drafts(objectives: ObjectiveResults) -> list[_Draft]:
    drafts: list[_Draft] = []
    rto, rpo = objectives.rto, objectives.rpo
    if rto.met is False:
        evidence = (
            msg("finding.rto.evidence", target=rto.target_s, actual=rto.actual_s)
            if rto.actual_s is not None
            else msg("finding.rto.evidence_unrecovered", target=rto.target_s)
        )
        drafts.append(
            _Draft(
                "high",
                "msp",
                "objective:rto",
                msg("finding.rto.title"),
                evidence,
                "msp",
                msg("finding.rto.action", target=rto.target_s),
            )
        )
    if rpo.met is False:
        drafts.append(
            _Draft(
                "high",
                "msp",
                "objective:rpo",
                msg("finding.rpo.title"),
                msg("finding.rpo.evidence", target=rpo.target_s, actual=rpo.actual_s),
                "msp",
                msg("finding.rpo.action", target=rpo.target_s),
            )
        )
    return drafts


def _step_draft(step: StepResult, late_limit: float) -> _Draft | None:
    if step.status not in ("late", "missed"):
        return None
    party: Party = "client" if step.party == "client" else "msp"
    if step.actual_s is None:
        evidence = msg("finding.step.evidence_never", target=step.target_s)
        action = msg("finding.step.action_never", title=step.title, party=party, target=step.target_s)
    else:
        evidence = msg(
            "finding.step.evidence",
            actual=step.actual_s,
            target=step.target_s,
            limit=step.target_s * late_limit,
        )
        action = msg(
            "finding.step.action_delayed",
            title=step.title,
            party=party,
            target=step.target_s,
            actual=step.actual_s,
        )
    return _Draft(
        "medium" if step.status == "late" else "high",
        party,
        f"step:{step.party}.{step.id}",
        msg(f"finding.step_{step.status}.title", party=party, title=step.title),
        evidence,
        party,
        action,
    )


def _drafts(facts: RunFacts, objectives: ObjectiveResults, steps: tuple[StepResult, ...]) -> list[_Draft]:
    late_limit = facts.spec.scoring.late_limit
    step_drafts = [d for s in steps if (d := _step_draft(s, late_limit)) is not None]
    return _drill_drafts(facts) + _objective_drafts(objectives) + step_drafts


def default_owner(facts: RunFacts, party: Party) -> str | None:
    """The first participant of ``party`` in the environment (``bcdrill improvements assign`` changes it)."""
    return next((p.name for p in facts.spec.participants if p.party == party), None)


def due_date(started_at: str, days: int) -> str:
    """The ISO date ``days`` after the drill's UTC date."""
    start = datetime.fromisoformat(started_at.replace("Z", "+00:00")).date()
    return (start + timedelta(days=days)).isoformat()


def findings_and_plan(
    facts: RunFacts, objectives: ObjectiveResults, steps: tuple[StepResult, ...]
) -> tuple[tuple[Finding, ...], tuple[Improvement, ...]]:
    """The findings of a run and one improvement per finding (English text plus messages)."""
    english = translator("en")
    findings: list[Finding] = []
    plan: list[Improvement] = []
    for number, draft in enumerate(_drafts(facts, objectives, steps), start=1):
        finding_id = f"F{number}"
        findings.append(
            Finding(
                id=finding_id,
                severity=draft.severity,
                party=draft.party,
                title=english.message(draft.title),
                evidence=english.message(draft.evidence),
                subject=draft.subject,
                title_msg=draft.title,
                evidence_msg=draft.evidence,
            )
        )
        plan.append(
            Improvement(
                finding=finding_id,
                owner_party=draft.owner,
                action=english.message(draft.action),
                due_in_days=DUE_IN_DAYS[draft.severity],
                subject=draft.subject,
                action_msg=draft.action,
                owner=default_owner(facts, draft.owner),
                due_by=due_date(facts.started_at, DUE_IN_DAYS[draft.severity]),
            )
        )
    return tuple(findings), tuple(plan)
