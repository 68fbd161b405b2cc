"""Findings (what went wrong, with journal evidence) and the improvement plan (one per finding).

Findings come in a fixed order: drill-level problems first (abort, preflight, reverts, restore,
injections), then missed objectives, then late or missed steps in playbook order. Ids are
``F1``, ``F2``… in that order, so the same journal always gives the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.durations import format_duration
from reports.facts import FaultTrack, RunFacts
from reports.model import (
    Finding,
    FindingParty,
    Improvement,
    ObjectiveResults,
    Party,
    Severity,
    StepResult,
)
from reports.scoring import revert_problem

DUE_IN_DAYS: dict[Severity, int] = {"critical": 1, "high": 14, "medium": 30, "low": 60}
PARTY_NAMES = {"msp": "MSP", "client": "Client", "drill": "Drill"}


@dataclass(frozen=True)
class _Draft:
    """A finding before it gets its id, with the action that addresses it."""

    severity: Severity
    party: FindingParty
    title: str
    evidence: str
    owner: Party
    action: str


def _drill_drafts(facts: RunFacts) -> list[_Draft]:
    drafts: list[_Draft] = []
    if facts.aborted is not None:
        by = f" by {facts.aborted.by}" if facts.aborted.by else ""
        drafts.append(_Draft(
            "high", "drill", "The drill was aborted",
            f"run.aborted{by}: {facts.aborted.reason}",
            "msp", "Review why the drill was aborted and adjust the playbook's safety limits "
            "or the drill plan before running it again.",
        ))
    if facts.preflight_failed is not None:
        drafts.append(_Draft(
            "high", "drill", "Preflight failed: nothing was injected",
            f"preflight.failed: {facts.preflight_failed.reason}",
            "msp", "Fix the environment so every target answers and the steady state holds, "
            "then run the drill again.",
        ))
    applied = any(f.applied_t is not None for f in facts.faults)
    explained = facts.preflight_failed or facts.aborted or any(f.inject_error for f in facts.faults)
    if not applied and not explained:
        drafts.append(_Draft(
            "high", "drill", "No fault was applied: the drill tested nothing",
            f"no fault.applied record among {len(facts.faults)} fault record(s)",
            "msp", "Check the playbook's fault timeline and the engine log, then run the "
            "drill again.",
        ))
    drafts += [d for f in facts.faults if (d := _revert_draft(f)) is not None]
    if facts.run_failed is not None:
        drafts.append(_Draft(
            "high", "drill", "The drill engine stopped the run on an error",
            f"run.failed: {facts.run_failed.reason}",
            "msp", "Fix the cause of the error (target, credentials, fault parameters) and "
            "run the drill again.",
        ))
    if facts.restore_failed is not None:
        drafts.append(_Draft(
            "critical", "drill", "The service did not come back after the drill",
            f"restore.failed: {facts.restore_failed.reason}",
            "msp", "Restore the staging service by hand and find out why reverting the "
            "faults did not bring it back.",
        ))
    for fault in facts.faults:
        if fault.inject_error is not None:
            drafts.append(_Draft(
                "medium", "drill", f"Fault {fault.id!r} could not be injected",
                f"{fault.action} on {fault.target or '?'}: {fault.inject_error}",
                "msp", f"Fix fault action {fault.action!r} on {fault.target or 'its target'} "
                "so the drill tests what the playbook intends.",
            ))
    return drafts


def _revert_draft(fault: FaultTrack) -> _Draft | None:
    problem = revert_problem(fault)
    if problem is None:
        return None
    evidence = f"{fault.action} on {fault.target or '?'}: {problem.text}"
    target = fault.target or "the target"
    if problem.remains:
        return _Draft(
            "critical", "drill", f"Fault {fault.id!r} may still be in place", evidence,
            "msp", f"Check {target} by hand now and run `bcdrill recover` for this run; "
            f"fix the revert of {fault.action!r} before the next drill.",
        )
    return _Draft(
        "high", "drill", f"Fault {fault.id!r} was not reverted by the run", evidence,
        "msp", f"Find out why reverting {fault.action!r} on {target} did not work first time "
        "and fix it before the next drill.",
    )


def _objective_drafts(objectives: ObjectiveResults) -> list[_Draft]:
    rto = objectives.rto
    if rto.met is not False:
        return []
    target = format_duration(rto.target_s)
    measured = (
        f"recovered after {format_duration(rto.actual_s)}"
        if rto.actual_s is not None
        else rto.note
    )
    return [_Draft(
        "high", "msp", "Recovery time objective missed",
        f"RTO target {target}; {measured}",
        "msp", f"Review the recovery runbook for this scenario (automation, standby, "
        f"escalation) so service is restored within {target}.",
    )]


def _step_draft(step: StepResult, late_limit: float) -> _Draft | None:
    if step.status not in ("late", "missed"):
        return None
    party: Party = "client" if step.party == "client" else "msp"
    target = format_duration(step.target_s)
    limit = format_duration(step.target_s * late_limit)
    if step.actual_s is None:
        evidence = f"never recorded; target {target}"
    else:
        evidence = (
            f"recorded {format_duration(step.actual_s)} after impact start; "
            f"target {target}, no credit after {limit}"
        )
    verb = "late" if step.status == "late" else "missed"
    cause = "why it was not done" if step.actual_s is None else "what delayed it"
    return _Draft(
        "medium" if step.status == "late" else "high",
        party,
        f"{PARTY_NAMES[party]} step {step.title!r} was {verb}",
        evidence,
        party,
        f"Rehearse {step.title!r}: find out {cause} and agree how the "
        f"{PARTY_NAMES[party]} team is alerted, so it happens within {target}.",
    )


def _drafts(
    facts: RunFacts, objectives: ObjectiveResults, steps: tuple[StepResult, ...]
) -> list[_Draft]:
    late_limit = facts.spec.scoring.late_limit
    step_drafts = [d for s in steps if (d := _step_draft(s, late_limit)) is not None]
    return _drill_drafts(facts) + _objective_drafts(objectives) + step_drafts


def findings_and_plan(
    facts: RunFacts, objectives: ObjectiveResults, steps: tuple[StepResult, ...]
) -> tuple[tuple[Finding, ...], tuple[Improvement, ...]]:
    """The findings of a run and one improvement per finding."""
    findings: list[Finding] = []
    plan: list[Improvement] = []
    for number, draft in enumerate(_drafts(facts, objectives, steps), start=1):
        finding_id = f"F{number}"
        findings.append(
            Finding(finding_id, draft.severity, draft.party, draft.title, draft.evidence)
        )
        plan.append(Improvement(finding_id, draft.owner, draft.action, DUE_IN_DAYS[draft.severity]))
    return tuple(findings), tuple(plan)
