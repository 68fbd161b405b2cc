"""The executive summary: one short paragraph in business words, derived from a debrief.

What was unavailable and for how long, who was affected, the person-hours and cost *had this
been production*, whether each side met its targets, and where last drill's actions stand.
A pure function of the debrief: every sentence is a catalogue :class:`Message` (key and
values), so the same summary reads in every report language and the JSON keeps the keys.

A time-scaled run (``--time-scale 0.01``) compresses the scenario; its outage, person-hours
and cost are scaled back to real scenario time here and the summary says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.model.text import SOURCE_LANGUAGE
from reports.debrief.model import Debrief, ImpactResult, Message, StepResult
from reports.debrief.scoring import outage_cost, person_hours

__all__ = ["ProductionImpact", "executive_summary", "production_impact"]

# Outcomes that are not a verdict on the responders: nothing is blamed on either team.
NO_VERDICT = ("aborted", "void")


@dataclass(frozen=True)
class ProductionImpact:
    """The outage at real scenario scale: what it would have cost in production."""

    outage_s: float
    person_hours: float
    cost: float
    currency: str
    scaled: bool  # True when the run was time-scaled and the figures were scaled back


def production_impact(impact: ImpactResult, time_scale: float) -> ProductionImpact:
    """``impact`` scaled back to real scenario time (unchanged for a run at scale 1)."""
    scale = time_scale if time_scale > 0 else 1.0
    outage = impact.outage_s / scale
    return ProductionImpact(
        outage_s=outage,
        person_hours=person_hours(impact.users_affected, outage),
        cost=outage_cost(impact.hourly_cost, outage),
        currency=impact.currency,
        scaled=scale != 1.0,
    )


def _unavailable(debrief: Debrief, lang: str) -> str:
    """The services that went down (steady-state probes first), by the names the debrief
    shows: plain words in the reader's language once :func:`~reports.debrief.language.for_language`
    has been applied, as renderers do."""
    down = [p for p in debrief.timeline.probes if any(b.state == "down" for b in p.bands)]
    steady = [p.probe for p in down if p.steady_state]
    names = steady or [p.probe for p in down]
    return ("、" if lang.startswith("zh") else ", ").join(names) if names else debrief.playbook.title


def _outage(debrief: Debrief, real: ProductionImpact, lang: str) -> list[Message]:
    basis = debrief.impact.outage_basis
    if basis == "none":
        return [Message("exec.outage.none")]
    what = _unavailable(debrief, lang)
    sentences = [Message(f"exec.outage.{basis}", {"what": what, "outage": real.outage_s})]
    if real.scaled:
        sentences.append(Message("exec.scaled", {"scale": debrief.time_scale}))
    return sentences


def _people(debrief: Debrief, real: ProductionImpact) -> list[Message]:
    impact = debrief.impact
    if impact.outage_basis == "none":
        return []
    if impact.users_affected <= 0:
        return [Message("exec.people.unknown")]
    values = {"users": impact.users_affected, "hours": real.person_hours}
    if impact.hourly_cost <= 0:
        return [Message("exec.people.hours", values)]
    return [Message("exec.people.cost", {**values, "cost": real.cost, "currency": real.currency})]


def _counted(steps: tuple[StepResult, ...], party: str) -> tuple[int, int]:
    mine = [s for s in steps if s.party == party and s.status != "not_exercised"]
    return sum(1 for s in mine if s.status == "on_time"), len(mine)


def _targets(debrief: Debrief) -> list[Message]:
    (msp_met, msp_all), (client_met, client_all) = (_counted(debrief.steps, p) for p in ("msp", "client"))
    if msp_all + client_all == 0:
        sentences = [Message("exec.targets.none")]
    elif msp_met == msp_all and client_met == client_all and msp_all and client_all:
        sentences = [Message("exec.targets.all")]
    else:
        sentences = [
            Message(
                "exec.targets.count",
                {"msp_met": msp_met, "msp_all": msp_all, "client_met": client_met, "client_all": client_all},
            )
        ]
    rto = debrief.objectives.rto
    if rto.met is not None and rto.target_s is not None and rto.actual_s is not None:
        scale = debrief.time_scale if debrief.time_scale > 0 else 1.0
        values = {"actual": rto.actual_s / scale, "target": rto.target_s / scale}
        sentences.append(Message("exec.rto.met" if rto.met else "exec.rto.missed", values))
    return sentences


def _verdict(debrief: Debrief) -> list[Message]:
    if debrief.outcome in NO_VERDICT:
        return [Message(f"exec.outcome.{debrief.outcome}")]
    return [Message(f"exec.outcome.{debrief.outcome}", {"score": debrief.score, "rating": debrief.rating})]


def _actions(debrief: Debrief) -> list[Message]:
    items = debrief.follow_up
    if not items:
        return []
    done = sum(1 for f in items if f.result == "improved")
    untested = sum(1 for f in items if f.result == "not_retested")
    still_open = len(items) - done - untested
    if done == len(items):
        return [Message("exec.actions.all_done", {"count": len(items)})]
    values = {"count": len(items), "done": done, "open": still_open, "untested": untested}
    return [Message("exec.actions.mixed", values)]


def executive_summary(debrief: Debrief, lang: str = SOURCE_LANGUAGE) -> tuple[Message, ...]:
    """The summary's sentences, in reading order (translate each with ``t.message``); ``lang``
    only decides how a list of names is joined."""
    real = production_impact(debrief.impact, debrief.time_scale)
    return (
        *_outage(debrief, real, lang),
        *_people(debrief, real),
        *_targets(debrief),
        *_verdict(debrief),
        *_actions(debrief),
    )
