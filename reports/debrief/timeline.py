"""The timeline a chart draws: probe up/down bands, fault windows and step marks.

All offsets are seconds from impact start (the first ``fault.applied``), or from run start
when no fault was applied; ``Timeline.origin`` says which.
"""

from __future__ import annotations

from reports.debrief.facts import ProbeChange, RunFacts
from reports.debrief.model import (
    FaultWindow,
    ProbeState,
    ProbeTrack,
    StateBand,
    StepMark,
    StepResult,
    Timeline,
)
from reports.debrief.scoring import first_records


def _bands(changes: list[ProbeChange], origin: float, end_s: float) -> tuple[StateBand, ...]:
    bands: list[StateBand] = []
    for index, change in enumerate(changes):
        start = change.t - origin
        stop = changes[index + 1].t - origin if index + 1 < len(changes) else end_s
        state: ProbeState = "up" if change.state == "up" else "down"
        bands.append(StateBand(start, max(start, stop), state))
    return tuple(bands)


def _probe_tracks(facts: RunFacts, origin: float, end_s: float) -> tuple[ProbeTrack, ...]:
    known = [p.id for p in facts.spec.probes]
    extra = sorted({c.probe for c in facts.probe_changes} - set(known))
    steady = set(facts.spec.steady_state)
    return tuple(
        ProbeTrack(
            probe=probe,
            steady_state=probe in steady,
            bands=_bands([c for c in facts.probe_changes if c.probe == probe], origin, end_s),
        )
        for probe in known + extra
    )


def _fault_windows(facts: RunFacts, origin: float) -> tuple[FaultWindow, ...]:
    return tuple(
        FaultWindow(
            id=f.id,
            from_s=f.applied_t - origin,
            to_s=None if f.reverted_t is None else f.reverted_t - origin,
        )
        for f in facts.faults
        if f.applied_t is not None
    )


def _step_marks(facts: RunFacts, steps: tuple[StepResult, ...]) -> tuple[StepMark, ...]:
    first = first_records(facts)
    marks: list[StepMark] = []
    for spec, step in zip(facts.spec.steps, steps, strict=True):
        record = first.get(spec.key) if step.actual_s is not None else None
        marks.append(
            StepMark(
                party=step.party,
                id=step.id,
                title=step.title,
                target_s=step.target_s,
                actual_s=step.actual_s,
                status=step.status,
                by=None if record is None else record.by,
                source=None if record is None else record.source,
            )
        )
    return tuple(marks)


def build_timeline(facts: RunFacts, anchor: float | None, steps: tuple[StepResult, ...]) -> Timeline:
    """The chart data of one run."""
    origin = facts.started_t if anchor is None else anchor
    end_s = facts.end_t - origin
    return Timeline(
        origin="run_start" if anchor is None else "impact_start",
        start_s=facts.started_t - origin,
        end_s=end_s,
        probes=_probe_tracks(facts, origin, end_s),
        faults=_fault_windows(facts, origin),
        steps=_step_marks(facts, steps),
    )
