"""Scoring v1: pure functions from :class:`~reports.debrief.facts.RunFacts` to step, party and run scores.

Times are seconds from the impact start (the anchor): when the first fault took effect, from
the target's own clock when there is one (the Docker daemon's event), else its
``fault.applied`` record.
A step on time scores 100; a late step loses credit linearly until ``late_limit * within_s``,
where it scores 0 and beyond which it is missed. See ``docs/scoring.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reports.debrief.facts import (
    DataLossFact,
    FaultTrack,
    RunFacts,
    ScoringSpec,
    StepRecord,
    StepSpec,
    impact_start,
)
from reports.debrief.model import (
    ImpactResult,
    ObjectiveResult,
    ObjectiveResults,
    OutageBasis,
    Outcome,
    Parties,
    PartyScore,
    Rating,
    StepResult,
    StepStatus,
    score_text,
)
from reports.debrief.resolution import timing_note
from reports.debrief.restoration import (
    engine_restored_for_responders,
    restoration_text,
    unexercised_restoration,
)

# Steps a person records; in ``auto`` mode nobody does, so unrecorded ones are not exercised.
HUMAN_RECORDINGS = frozenset({"ack", "webhook"})


def anchor_t(facts: RunFacts) -> float | None:
    """The impact start: when the first fault took effect, or ``None`` if nothing was applied."""
    return impact_start(facts.faults)


def grade(actual_s: float | None, within_s: float, late_limit: float) -> tuple[StepStatus, float]:
    """Status and score (0 to 100) of a step recorded ``actual_s`` after impact start."""
    if actual_s is None:
        return "missed", 0.0
    if actual_s <= within_s:
        return "on_time", 100.0
    limit = late_limit * within_s
    if limit > within_s and actual_s <= limit:
        return "late", 100.0 * (limit - actual_s) / (limit - within_s)
    return "missed", 0.0


def first_records(facts: RunFacts) -> dict[str, StepRecord]:
    """The first record of each step key (later duplicates are ignored)."""
    first: dict[str, StepRecord] = {}
    for record in facts.step_records:
        first.setdefault(record.key, record)
    return first


def score_step(
    step: StepSpec, record: StepRecord | None, anchor: float | None, facts: RunFacts
) -> StepResult:
    """Grade one step; unexercised steps get no score and do not count."""
    auto_unrecorded = (
        record is None and facts.spec.responders == "auto" and step.recorded_by in HUMAN_RECORDINGS
    )
    if anchor is None or auto_unrecorded:
        status: StepStatus = "not_exercised"
        return StepResult(step.party, step.id, step.title, step.within_s, None, status, None)
    actual = None if record is None else record.t - anchor
    status, score = grade(actual, step.within_s, facts.spec.scoring.late_limit)
    return StepResult(step.party, step.id, step.title, step.within_s, actual, status, score)


def score_steps(facts: RunFacts, anchor: float | None) -> tuple[StepResult, ...]:
    """Grade every step of the run, in playbook order."""
    first = first_records(facts)
    return tuple(score_step(s, first.get(s.key), anchor, facts) for s in facts.spec.steps)


def weighted_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Mean of ``(value, weight)`` pairs; ``None`` when the weights sum to zero."""
    items = list(pairs)
    total = sum(weight for _, weight in items)
    if total <= 0:
        return None
    return sum(value * weight for value, weight in items) / total


def rating(score: float | None, scoring: ScoringSpec) -> Rating | None:
    """The band of ``score`` (compared at three decimals, as reported)."""
    if score is None:
        return None
    shown = round(score, 3)
    if shown >= scoring.band_p:
        return "P"
    if shown >= scoring.band_s:
        return "S"
    if shown >= scoring.band_m:
        return "M"
    return "U"


def party_score(party: str, facts: RunFacts, results: tuple[StepResult, ...]) -> float | None:
    """Weighted mean of the party's counted step scores."""
    pairs = (
        (result.score, spec.weight)
        for spec, result in zip(facts.spec.steps, results, strict=True)
        if result.party == party and result.score is not None
    )
    return weighted_mean(pairs)


def score_parties(facts: RunFacts, results: tuple[StepResult, ...]) -> tuple[Parties, float | None]:
    """Each party's score and rating, and the overall score across parties with counted steps."""
    scoring = facts.spec.scoring
    msp = party_score("msp", facts, results)
    client = party_score("client", facts, results)
    weighted = [(msp, scoring.weight_msp), (client, scoring.weight_client)]
    overall = weighted_mean((s, w) for s, w in weighted if s is not None)
    parties = Parties(
        msp=PartyScore(msp, rating(msp, scoring)),
        client=PartyScore(client, rating(client, scoring)),
    )
    return parties, overall


def steady_state_recovery(facts: RunFacts, anchor: float) -> tuple[float | None, str]:
    """Seconds from ``anchor`` until every steady-state probe is up for good, with a note."""
    last_up = anchor
    for probe in facts.spec.steady_state:
        changes = [c for c in facts.probe_changes if c.probe == probe]
        if not changes:
            return None, f"not measured: steady-state probe {probe!r} never reported"
        if changes[-1].state != "up":
            return None, f"not recovered: steady-state probe {probe!r} was down at run end"
        ups = [c.t for c in changes if c.state == "up" and c.t >= anchor]
        last_up = max([last_up, *ups])
    if last_up == anchor:
        return 0.0, "no outage seen: steady-state probes stayed up after impact start"
    return last_up - anchor, "measured: all steady-state probes up again and stayed up"


def rto_result(facts: RunFacts, anchor: float | None) -> ObjectiveResult:
    """Recovery time: impact start until all steady-state probes are up and stay up."""
    target = facts.spec.rto_s
    if anchor is None:
        return ObjectiveResult(target, None, None, "not measured: no fault was applied")
    if not facts.spec.steady_state:
        return ObjectiveResult(target, None, None, "not measured: no steady-state probes")
    unexercised = unexercised_restoration(facts)
    if unexercised is not None:
        return ObjectiveResult(target, None, None, unexercised)
    actual, note = steady_state_recovery(facts, anchor)
    not_by_responders = engine_restored_for_responders(facts)
    if actual is not None and not_by_responders is not None:
        return ObjectiveResult(target, None, False if target is not None else None, not_by_responders)
    if actual is not None and actual > 0:
        note = "; ".join(part for part in (note, restoration_text(facts), timing_note(facts, anchor)) if part)
    if target is None:
        return ObjectiveResult(None, actual, None, f"{note} (no RTO target set)")
    if actual is None:
        met = False if note.startswith("not recovered") else None
        return ObjectiveResult(target, None, met, note)
    return ObjectiveResult(target, actual, actual <= target, note)


def rpo_result(facts: RunFacts, anchor: float | None = None) -> ObjectiveResult:
    """Recovery point: the worst data loss the ``rpo_probe`` measured after impact start.

    Data loss is real seconds of lost writes, so the target is compared *unscaled* (the
    run's ``time_scale`` is undone): a lab that backs up every 5 s meets a 15-minute RPO in
    CI exactly as it would in a real drill. See ``docs/scoring.md``, "RPO".
    """
    spec = facts.spec
    if spec.rpo_s is None:
        return ObjectiveResult(None, None, None, "no RPO target set")
    target = spec.rpo_s / spec.time_scale if spec.time_scale > 0 else spec.rpo_s
    if spec.rpo_probe is None:
        return ObjectiveResult(target, None, None, "not measured: the playbook names no rpo_probe")
    start = anchor if anchor is not None else facts.started_t
    losses = [d for d in facts.data_losses if d.probe == spec.rpo_probe and d.t >= start]
    if not losses:
        return ObjectiveResult(
            target, None, None, f"not measured: data probe {spec.rpo_probe!r} saw no outage or rollback"
        )
    worst = max(losses, key=lambda d: (d.nothing_survived, d.rpo_s))
    return ObjectiveResult(
        target, worst.rpo_s, not worst.nothing_survived and worst.rpo_s <= target, rpo_note(worst)
    )


def rpo_note(loss: DataLossFact) -> str:
    """How ``loss`` was measured: against the newest surviving record, or — none survived — as
    at least the time since the oldest record the probe saw."""
    if loss.nothing_survived:
        return (
            f"measured by data probe {loss.probe!r}: no record written at or before the newest seen "
            f"before the loss {loss.seen} survived; at least the writes since the oldest record seen "
            "were lost; real seconds, target not time-scaled"
        )
    return (
        f"measured by data probe {loss.probe!r}: newest surviving record {loss.surviving}, "
        f"newest seen before the loss {loss.seen}; real seconds, target not time-scaled"
    )


def score_objectives(facts: RunFacts, anchor: float | None) -> ObjectiveResults:
    """RTO and RPO results."""
    return ObjectiveResults(rto=rto_result(facts, anchor), rpo=rpo_result(facts, anchor))


def resolution_s(facts: RunFacts) -> float | None:
    """The finest probe interval: the resolution every derived time was measured at."""
    intervals = [p.interval_s for p in facts.spec.probes]
    return min(intervals) if intervals else None


@dataclass(frozen=True)
class RevertProblem:
    """Why a fault's revert needs attention; ``remains`` when it may still be in place."""

    text: str
    remains: bool


def revert_problem(fault: FaultTrack) -> RevertProblem | None:
    """What went wrong undoing ``fault``, or ``None`` when the run itself verifiably undid it."""
    if fault.reverted_t is None and fault.revert_error is not None:
        return RevertProblem(f"revert failed: {fault.revert_error}", remains=True)
    if fault.reverted_t is None:
        return RevertProblem("no revert was recorded", remains=True)
    if fault.verified is not True:
        return RevertProblem("revert ran but could not be verified", remains=True)
    if fault.revert_error is not None:
        later = "by `bcdrill recover`" if fault.recovered else "on a later attempt"
        return RevertProblem(f"revert failed during the run ({fault.revert_error}); reverted {later}", False)
    if fault.recovered:
        return RevertProblem("the run stopped before reverting; `bcdrill recover` did", False)
    return None


def person_hours(users: int, outage_s: float) -> float:
    """Person-hours lost, rounded once to two places: the debrief, the trend and the summary
    all show this figure, so no report rounds an already rounded number again."""
    return round(users * outage_s / 3600.0, 2)


def outage_cost(hourly_cost: float, outage_s: float) -> float:
    """What an outage of ``outage_s`` costs at ``hourly_cost``, rounded once to two places."""
    return round(hourly_cost * outage_s / 3600.0, 2)


def engine_reverted(facts: RunFacts) -> bool:
    """True when the engine (the run itself, not ``bcdrill recover``) reverted a fault that was
    still in place: whatever came back after that was brought back by the revert."""
    return any(
        f.reverted_t is not None and f.already_restored is not True and not f.recovered for f in facts.faults
    )


def outage_end(facts: RunFacts, anchor: float, rto: ObjectiveResult) -> tuple[float, OutageBasis]:
    """How long the service was out and what ended the outage: the measured recovery; else the
    steady-state probes' return for good (after the engine's revert, or unmeasured by the RTO);
    else the run's end, the service still down."""
    if rto.actual_s is not None:
        return rto.actual_s, "recovered"
    back = steady_state_recovery(facts, anchor)[0] if facts.spec.steady_state else None
    if back is None:
        return max(0.0, facts.end_t - anchor), "until_run_end"
    return back, "restored_by_engine" if back > 0 and engine_reverted(facts) else "recovered"


def impact(facts: RunFacts, anchor: float | None, rto: ObjectiveResult) -> ImpactResult:
    """Person-hours lost and cost over the outage (see :func:`outage_end`)."""
    spec = facts.spec
    none: tuple[float, OutageBasis] = (0.0, "none")
    outage, basis = none if anchor is None else outage_end(facts, anchor, rto)
    return ImpactResult(
        users_affected=spec.users_affected,
        outage_s=outage,
        outage_basis=basis,
        person_hours=person_hours(spec.users_affected, outage),
        hourly_cost=spec.hourly_cost,
        cost=outage_cost(spec.hourly_cost, outage),
        currency=spec.currency,
    )


def failure_reasons(
    facts: RunFacts, anchor: float | None, objectives: ObjectiveResults, score: float | None
) -> list[str]:
    """Every reason the run failed (empty when it passed), in a fixed order."""
    reasons: list[str] = []
    if facts.preflight_failed is not None:
        reasons.append(f"preflight failed: {facts.preflight_failed.reason}")
    if anchor is None and facts.preflight_failed is None:
        reasons.append("no fault was applied")
    reasons += [f"fault {f.id!r}: {p.text}" for f in facts.faults if (p := revert_problem(f))]
    if facts.run_failed is not None:
        reasons.append(f"run failed: {facts.run_failed.reason}")
    if facts.restore_failed is not None:
        reasons.append(f"restore failed: {facts.restore_failed.reason}")
    for name in ("rto", "rpo"):
        if getattr(objectives, name).met is False:
            reasons.append(f"{name.upper()} objective missed")
    if objectives.rto.target_s is not None and objectives.rto.note.startswith("not measured: step"):
        reasons.append(f"RTO {objectives.rto.note}")  # auto mode must not claim a recovery it never saw
    pass_score = facts.spec.scoring.pass_score
    if score is not None and round(score, 3) < pass_score:
        reasons.append(f"score {score_text(score)} is below the pass mark {pass_score:g}")
    return reasons


def outcome(
    facts: RunFacts, anchor: float | None, objectives: ObjectiveResults, score: float | None
) -> Outcome:
    """``aborted`` if the run was aborted, ``failed`` for any failure reason, else ``passed``."""
    if facts.aborted is not None:
        return "aborted"
    return "failed" if failure_reasons(facts, anchor, objectives, score) else "passed"
