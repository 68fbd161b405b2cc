"""Build the debrief (schema ``bcdrill/debrief/v1``) from a run journal: a pure function.

>>> debrief = debrief_from_journal(run_dir / "journal.jsonl")
>>> debrief.dumps()  # canonical JSON; the same journal always gives the same bytes
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.record.journal import JournalContents, read_journal
from reports.debrief.exercise import combined_rating, exercise_results, with_decision_scores
from reports.debrief.exercise_model import ExerciseResults
from reports.debrief.facts import FaultTrack, RunFacts, read_facts
from reports.debrief.findings import findings_and_plan
from reports.debrief.history import History, with_history
from reports.debrief.model import (
    SCHEMA_ID,
    Debrief,
    EnvironmentRef,
    Evidence,
    FaultResult,
    FaultStatus,
    Note,
    PlaybookRef,
    RunClassName,
)
from reports.debrief.notes import read_notes
from reports.debrief.scoring import (
    anchor_t,
    impact,
    outcome,
    rating,
    resolution_s,
    score_objectives,
    score_parties,
    score_steps,
)
from reports.debrief.timeline import build_timeline
from reports.debrief.void import reach_steps, void_objectives, void_reason

__all__ = ["Debrief", "History", "build_debrief", "debrief_from_facts", "debrief_from_journal"]


def _fault_results(facts: RunFacts, anchor: float | None) -> tuple[FaultResult, ...]:
    def offset(t: float | None) -> float | None:
        return None if t is None or anchor is None else t - anchor

    return tuple(
        FaultResult(
            id=f.id,
            action=f.action,
            target=f.target,
            status=_fault_status(f),
            applied_at=offset(f.applied_t),
            reverted_at=offset(f.reverted_t),
            revert_verified=f.verified,
            target_name=f.target_name,
        )
        for f in facts.faults
    )


def _fault_status(fault: FaultTrack) -> FaultStatus:
    """Where a fault ended: reverted, revert failed, inject failed, applied or only intended."""
    if fault.reverted_t is not None:
        return "reverted"
    if fault.revert_error is not None:
        return "revert_failed"
    if fault.inject_error is not None:
        return "inject_failed"
    if fault.applied_t is not None:
        return "applied"
    return "intended"


def _run_class(value: str) -> RunClassName:
    if value == "drill":
        return "drill"
    return "ci" if value == "ci" else "rehearsal"


def debrief_from_facts(
    facts: RunFacts, notes: tuple[Note, ...] = (), exercise: ExerciseResults | None = None
) -> Debrief:
    """Score the run and assemble its debrief (``notes`` from :func:`reports.debrief.notes.read_notes`,
    ``exercise`` from :func:`reports.debrief.exercise.exercise_results`)."""
    spec = facts.spec
    anchor = anchor_t(facts)
    steps = with_decision_scores(reach_steps(facts, anchor, score_steps(facts, anchor)), exercise)
    void = void_reason(facts, steps)
    parties, score = score_parties(facts, steps)
    objectives = score_objectives(facts, anchor)
    if void is not None:
        objectives = void_objectives(facts, anchor, objectives)
    findings, improvements = findings_and_plan(facts, objectives, steps)
    timing_rating = rating(score, spec.scoring)
    if exercise is not None:
        exercise = replace(exercise, combined_rating=combined_rating(timing_rating, exercise.ratings))
    return Debrief(
        schema=SCHEMA_ID,
        run_id=spec.run_id,
        playbook=PlaybookRef(spec.playbook_id, spec.playbook_title),
        environment=EnvironmentRef(spec.environment_name, spec.environment_kind),
        client=spec.client,
        responders=spec.responders,
        time_scale=spec.time_scale,
        started_at=facts.started_at,
        ended_at=facts.ended_at,
        outcome="void" if void is not None else outcome(facts, anchor, objectives, score),
        score=score,
        rating=timing_rating,
        resolution_s=resolution_s(facts),
        parties=parties,
        steps=steps,
        objectives=objectives,
        faults=_fault_results(facts, anchor),
        impact=impact(facts, anchor, objectives.rto),
        findings=findings,
        improvements=improvements,
        timeline=build_timeline(facts, anchor, steps),
        notes=notes,
        translations=spec.translations,
        exercise=exercise,
        run_class=_run_class(facts.spec.run_class),
        void_reason=void,
        evidence=Evidence(facts.head_hash, facts.record_count, facts.spec.signing_key),
    )


def build_debrief(contents: JournalContents, history: History | None = None) -> Debrief:
    """The debrief of a verified journal, compared with ``history`` (earlier drills) if given.

    A pure function: the same journal and history always give the same debrief.
    """
    facts = read_facts(contents)
    anchor = anchor_t(facts)
    origin = facts.started_t if anchor is None else anchor
    exercise = exercise_results(contents, anchor, score_steps(facts, anchor))
    debrief = debrief_from_facts(facts, read_notes(contents, origin), exercise)
    return with_history(debrief, history)


def debrief_from_journal(path: Path, history: History | None = None) -> Debrief:
    """Read and verify the journal at ``path`` and build its debrief."""
    return build_debrief(read_journal(path), history)
