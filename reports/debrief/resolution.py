"""How finely each figure of a debrief was measured, and by which clock (never better).

- the impact start: the Docker daemon's own event time when the journal has it (``die``,
  ``pause``…, nanoseconds), else the engine's ``fault.applied`` record (after the call
  returned, up to ~250 ms late);
- outage and recovery: the steady-state probes, whose transitions are stamped at the check
  that first observed them, so they are at most one probe interval late;
- steps: the engine's receipt time.
"""

from __future__ import annotations

from reports.debrief.facts import RunFacts


def impact_source(facts: RunFacts, anchor: float | None) -> str:
    """Where the impact start (``anchor``) comes from."""
    for fault in facts.faults:
        if fault.effective_t is not None and fault.effective_t == anchor:
            return f"impact start from the {fault.effective_source or 'target clock'}"
    return "impact start from the engine's fault.applied record (after the call returned)"


def recovery_resolution(facts: RunFacts) -> str:
    """The steady-state probes' intervals: the resolution of outage and recovery times."""
    intervals = {p.id: p.interval_s for p in facts.spec.probes if p.id in facts.spec.steady_state}
    if not intervals:
        return "no steady-state probes"
    shown = ", ".join(f"{pid!r} every {s * 1000:.0f} ms" for pid, s in sorted(intervals.items()))
    return f"recovery from probe {shown} (within one interval)"


def timing_note(facts: RunFacts, anchor: float | None) -> str:
    """One sentence for the recovery time's note: clock sources and resolution."""
    return f"{impact_source(facts, anchor)}; {recovery_resolution(facts)}"


__all__ = ["impact_source", "recovery_resolution", "timing_note"]
