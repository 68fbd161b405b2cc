"""The business-language comparison with the previous drill, as whole translated sentences.

"Productivity time lost fell 38 % year on year (12.00 → 7.40 person-hours)." Each sentence
is one catalogue message; which one depends on the direction of the change and on whether
the previous drill was about a year earlier (``yoy``) or at another time (``since``).
"""

from __future__ import annotations

from reports.debrief.model import Comparison, Debrief
from reports.i18n import Translator

YEAR_DAYS = (300.0, 430.0)  # a previous drill in this range counts as "a year earlier"
SAME_PCT = 0.5  # changes smaller than this (in %) read as unchanged
SAME_POINTS = 0.05


def _period(comparison: Comparison) -> str:
    low, high = YEAR_DAYS
    return "yoy" if low <= comparison.days_between <= high else "since"


def _direction(before: float, after: float, pct: float | None) -> str:
    if before <= 0:
        return "none" if after <= 0 else "new"
    if pct is None or abs(pct) < SAME_PCT:
        return "same"
    return "fell" if pct < 0 else "rose"


def _score_sentence(t: Translator, c: Comparison, after: float | None, period: str) -> list[str]:
    if c.score_change is None or c.previous_score is None or after is None:
        return []
    change = c.score_change
    direction = "same" if abs(change) < SAME_POINTS else ("up" if change > 0 else "down")
    return [
        t(
            f"compare.score.{direction}.{period}",
            points=change,
            before=c.previous_score,
            after=after,
            date=c.previous_started_at,
        )
    ]


def comparison_sentences(debrief: Debrief, t: Translator) -> list[str]:
    """Sentences comparing ``debrief`` with the previous drill (none without a comparison)."""
    c = debrief.comparison
    if c is None:
        return []
    period = _period(c)
    impact = debrief.impact
    hours = _direction(c.previous_person_hours, impact.person_hours, c.person_hours_change_pct)
    cost = _direction(c.previous_cost, impact.cost, c.cost_change_pct)
    common = {"date": c.previous_started_at}
    sentences = [
        t(
            f"compare.hours.{hours}.{period}",
            pct=c.person_hours_change_pct or 0.0,
            before=c.previous_person_hours,
            after=impact.person_hours,
            **common,
        ),
        t(
            f"compare.cost.{cost}.{period}",
            pct=c.cost_change_pct or 0.0,
            before=c.previous_cost,
            after=impact.cost,
            currency=impact.currency,
            **common,
        ),
    ]
    return sentences + _score_sentence(t, c, debrief.score, period)
