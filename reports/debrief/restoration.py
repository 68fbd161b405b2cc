"""Who restored the service, and whether the recovery time really measured the responders.

Two restoration modes (``restore`` per fault, see docs/scoring.md):

- ``responders``: the responders restore the service themselves (e.g. restart the
  container); the engine only verifies and reverts what is left at the end. The recovery
  time measures the responders' real recovery. If the service came back only because the
  engine reverted the fault at the end, the responders did not restore it.
- ``engine``: the engine restores the service when the responder's ``until`` step is
  recorded; the recovery time measures that signal plus the restart, not a repair.

In ``--responders auto`` a human step without runbook automation is not exercised: when it
is the step that ends a fault, the engine ended the fault on its own and the recovery time
is not measured (and the run does not pass on it).
"""

from __future__ import annotations

from reports.debrief.facts import FaultPlanInfo, FaultTrack, RunFacts

HUMAN_RECORDINGS = frozenset({"ack", "webhook"})


def _plan_of(track: FaultTrack, facts: RunFacts) -> FaultPlanInfo | None:
    spec_id = track.id.split("@", 1)[0]
    return next((f for f in facts.spec.faults if f.id == spec_id), None)


def unexercised_restoration(facts: RunFacts) -> str | None:
    """Why the recovery time cannot be measured in an ``auto`` run (None when it can): a
    fault was ended by a step nobody performed."""
    if facts.spec.responders != "auto":
        return None
    recorded = {r.key for r in facts.step_records}
    kinds = {s.key: s.recorded_by for s in facts.spec.steps}
    for plan in facts.spec.faults:
        step = plan.until
        if step is None or step in recorded or step in facts.spec.automated_steps:
            continue
        if kinds.get(step) in HUMAN_RECORDINGS:
            return (
                f"not measured: step {step} ends fault {plan.id!r} but has no runbook "
                "automation, so --responders auto did not exercise it; the engine restored the service"
            )
    return None


def engine_restored_for_responders(facts: RunFacts) -> str | None:
    """A ``restore: responders`` fault the responders never restored: when the engine came
    to revert it, it was still in place (None when the responders restored every one)."""
    for track in facts.faults:
        plan = _plan_of(track, facts)
        if plan is None or plan.restore != "responders" or track.already_restored is not False:
            continue
        return (
            f"not restored by the responders: fault {track.id!r} was still in place when the "
            "engine reverted it"
        )
    return None


def restoration_text(facts: RunFacts) -> str:
    """One clause saying who restored the service, for the recovery time's note."""
    modes = {p.restore for p in facts.spec.faults if p.until is not None}
    if modes == {"responders"}:
        return "restored by the responders (the engine only verified)"
    if modes == {"engine"}:
        steps = ", ".join(sorted({p.until for p in facts.spec.faults if p.until}))
        return f"restored by the engine at the responders' signal ({steps})"
    if modes:
        return "restored partly by the responders, partly by the engine at their signal"
    return ""


__all__ = ["engine_restored_for_responders", "restoration_text", "unexercised_restoration"]
