"""Void runs: stopped for reasons outside the responders' control, so nobody is blamed.

A run is ``void`` when it was refused at preflight, stopped by an engine error, crashed and
was finished by ``bcdrill recover``, or was aborted (operator, signal, safety rule) before
every step was settled. Steps the stop cut off are ``not_reached``: they get no score and
no finding. A step that was due before the stop still counts: recorded steps are graded as
usual; an unrecorded step past its target at the stop is ``late`` (scored at the stop, the
most credit it could still have earned) or ``missed`` when its late limit had passed too.
See ``docs/scoring.md``, "Void runs". Pure functions of :class:`RunFacts`.
"""

from __future__ import annotations

from dataclasses import replace

from reports.debrief.facts import Event, RunFacts, StepSpec
from reports.debrief.model import ObjectiveResults, StepResult

__all__ = ["reach_steps", "stop_of", "void_objectives", "void_reason"]


def stop_of(facts: RunFacts) -> tuple[str, Event] | None:
    """Why and when the run stopped early, or ``None`` when it ran to its end."""
    if facts.preflight_failed is not None:
        return f"preflight refused: {facts.preflight_failed.reason}", facts.preflight_failed
    if facts.crashed is not None:
        return facts.crashed.reason, facts.crashed
    if facts.run_failed is not None:
        return f"engine error: {facts.run_failed.reason}", facts.run_failed
    if facts.aborted is not None:
        return facts.aborted.reason or "aborted", facts.aborted
    return None


def _reach(
    spec: StepSpec, result: StepResult, anchor: float | None, stop_t: float, late_limit: float
) -> StepResult:
    if result.actual_s is not None or result.status in ("on_time", "late"):
        return result  # recorded before the stop: graded as usual
    if anchor is None:
        return replace(result, status="not_reached", score=None)
    if result.status == "not_exercised":
        return result  # nobody was asked to record it (``--responders auto``)
    due, limit = anchor + spec.within_s, anchor + late_limit * spec.within_s
    if stop_t < due:
        return replace(result, status="not_reached", score=None)
    if stop_t >= limit or limit <= due:
        return result  # missed before the stop
    return replace(result, status="late", score=100.0 * (limit - stop_t) / (limit - due))


def reach_steps(
    facts: RunFacts, anchor: float | None, steps: tuple[StepResult, ...]
) -> tuple[StepResult, ...]:
    """``steps`` with those the stop cut off marked ``not_reached`` (unchanged for a full run)."""
    stop = stop_of(facts)
    if stop is None:
        return steps
    late_limit = facts.spec.scoring.late_limit
    return tuple(
        _reach(spec, result, anchor, stop[1].t, late_limit)
        for spec, result in zip(facts.spec.steps, steps, strict=True)
    )


def void_reason(facts: RunFacts, steps: tuple[StepResult, ...]) -> str | None:
    """Why the run is void, or ``None`` when it counts.

    An abort after every step was settled (none ``not_reached``) leaves the run ``aborted``,
    not void: the responders' part was over.
    """
    stop = stop_of(facts)
    if stop is None:
        return None
    only_aborted = facts.preflight_failed is None and facts.run_failed is None and facts.crashed is None
    if only_aborted and not any(s.status == "not_reached" for s in steps):
        return None
    return stop[0]


STOPPED_NOTE = "not measured: the run stopped before recovery"


def void_objectives(facts: RunFacts, anchor: float | None, objectives: ObjectiveResults) -> ObjectiveResults:
    """Objectives of a void run: a recovery the stop prevented, or that only the engine's
    revert after the stop brought about, is not measured — neither met nor missed."""
    stop = stop_of(facts)
    rto = objectives.rto
    if stop is not None and anchor is not None and rto.actual_s is not None:
        after_stop = anchor + rto.actual_s >= stop[1].t
    else:
        after_stop = rto.met is False
    if after_stop:
        rto = replace(rto, actual_s=None, met=None, note=STOPPED_NOTE)
    rpo = objectives.rpo
    if rpo.met is False and rpo.actual_s is None:
        rpo = replace(rpo, met=None, note=STOPPED_NOTE)
    return ObjectiveResults(rto=rto, rpo=rpo)
