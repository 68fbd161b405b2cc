"""The people side of a debrief: injects and their deliveries, decisions, players' entries.

Part of the debrief (``Debrief.exercise``); computed by :mod:`reports.debrief.exercise`.
Times are seconds from impact start.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DecisionResult",
    "Delivery",
    "EntryResult",
    "ExerciseResults",
    "HotwashAnswer",
    "HotwashResult",
    "InjectResult",
    "mean_confidence",
]


@dataclass(frozen=True)
class Delivery:
    """One delivery of an inject: the desk or an outside channel, sent or failed (with why)."""

    channel: str
    status: str  # sent | failed
    reason: str


@dataclass(frozen=True)
class InjectResult:
    """An alert or inject: when it went out, to whom, and whether the expected reaction came."""

    id: str
    kind: str  # alert | inject
    to: str
    sender: str
    trigger: str
    adhoc: bool
    sent_s: float | None
    text: str  # in English when given, otherwise the first language
    deliveries: tuple[Delivery, ...]
    expect_step: str | None
    expect_within_s: float | None
    reaction_s: float | None  # seconds from the inject to the expected step
    reaction_met: bool | None  # None when nothing was expected


@dataclass(frozen=True)
class DecisionResult:
    """A decision point: the choice, its rationale, and how it scored on time and choice."""

    step: str
    party: str
    title: str
    options: tuple[str, ...]
    expected: tuple[str, ...]
    choice: str
    rationale: str
    by: str
    actual_s: float | None
    target_s: float
    time_score: float | None
    choice_expected: bool | None
    score: float | None


@dataclass(frozen=True)
class CadenceInterval:
    """One update interval: its deadline, the update that met it (or came late), met or missed."""

    due_s: float
    update_s: float | None
    met: bool


@dataclass(frozen=True)
class CadenceResult:
    """A step with an update cadence: every interval until its ``until`` step, met or missed."""

    step: str
    party: str
    title: str
    every_s: float
    until: str
    intervals: tuple[CadenceInterval, ...]
    met: int
    missed: int
    cadence_score: float | None  # share of intervals met, 0–100; None when none fell due
    score: float | None  # the step's score: mean of its time score and the cadence score


@dataclass(frozen=True)
class EntryResult:
    """A player's free-text entry, for the evaluator to map to a step."""

    at_s: float | None
    by: str
    party: str
    text: str
    mapped_to: str | None = None  # the step an evaluator mapped it to; "" = no step; None = unmapped
    mapped_by: str = ""


@dataclass(frozen=True)
class ObservationResult:
    """An evaluator's observation: a strength or an area for improvement, with a time."""

    at_s: float | None
    by: str
    kind: str  # strength | improvement
    step: str
    capability: str
    text: str
    internal: bool  # left out of the client's version


@dataclass(frozen=True)
class RatingResult:
    """An evaluator's HSEEP rating of a capability (P/S/M/U) with the rationale."""

    at_s: float | None
    by: str
    capability: str
    rating: str
    rationale: str


@dataclass(frozen=True)
class HotwashAnswer:
    """One participant's hotwash survey answers (the participants' view)."""

    at_s: float | None
    by: str
    party: str
    role: str
    language: str
    went_well: str
    improve: str
    confidence: int  # 1–5
    internal: bool  # left out of the client's version


@dataclass(frozen=True)
class HotwashResult:
    """The participants' view: every answer and the mean confidence per party."""

    window_s: float
    answers: tuple[HotwashAnswer, ...]
    confidence: dict[str, float | None]  # party → mean confidence of its answers (None: none)


def mean_confidence(answers: tuple[HotwashAnswer, ...]) -> dict[str, float | None]:
    """The mean confidence per party (msp, client) of ``answers``, rounded to 0.1."""
    means: dict[str, float | None] = {}
    for party in ("msp", "client"):
        scores = [a.confidence for a in answers if a.party == party]
        means[party] = round(sum(scores) / len(scores), 1) if scores else None
    return means


@dataclass(frozen=True)
class ExerciseResults:
    """Everything about the human side of one drill."""

    players: str
    injects: tuple[InjectResult, ...]
    decisions: tuple[DecisionResult, ...]
    entries: tuple[EntryResult, ...]
    cadences: tuple[CadenceResult, ...] = ()
    observations: tuple[ObservationResult, ...] = ()
    ratings: tuple[RatingResult, ...] = ()
    combined_rating: str | None = None  # timing rating and evaluators' ratings, by the documented rule
    hotwash: HotwashResult | None = None  # the participants' view after ENDEX (None: no hotwash)
