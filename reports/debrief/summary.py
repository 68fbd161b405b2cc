"""One line per drill: the figures trends and comparisons need, read from a debrief's JSON.

Reading only these fields keeps a trend over a thousand runs fast; the full
:class:`~reports.debrief.model.Debrief` is never rebuilt for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reports.debrief.model import SCHEMA_ID, Debrief
from reports.i18n import parse_utc

COMPLETED = frozenset({"passed", "failed"})  # outcomes of a run that went to its end


@dataclass(frozen=True)
class RunSummary:
    """The headline figures of one drill."""

    run_id: str
    client: str
    playbook_id: str
    playbook_title: str
    environment: str
    started_at: str
    outcome: str
    score: float | None
    rating: str | None
    msp_score: float | None
    client_score: float | None
    rto_target_s: float | None
    rto_actual_s: float | None
    rto_met: bool | None
    outage_s: float
    person_hours: float
    cost: float
    currency: str
    findings: int
    run_class: str = "rehearsal"  # debriefs written before run classes existed read as rehearsals
    time_scale: float = 1.0

    @property
    def counts(self) -> bool:
        """True for a completed official drill: the only runs a client's history is made of."""
        return self.run_class == "drill" and self.outcome in COMPLETED

    @property
    def started(self) -> datetime:
        """``started_at`` as an aware datetime."""
        return parse_utc(self.started_at)

    @property
    def order(self) -> tuple[str, str]:
        """Sort key: start time (ISO UTC sorts as text), then run id."""
        return (self.started_at, self.run_id)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSummary:
        """The summary of a ``bcdrill/debrief/v1`` document; ``ValueError`` if it is not one."""
        if data.get("schema") != SCHEMA_ID:
            raise ValueError(f"not a {SCHEMA_ID} debrief: schema is {data.get('schema')!r}")
        try:
            parties, rto, impact = data["parties"], data["objectives"]["rto"], data["impact"]
            return cls(
                run_id=str(data["run_id"]),
                client=str(data["client"]),
                playbook_id=str(data["playbook"]["id"]),
                playbook_title=str(data["playbook"]["title"]),
                environment=str(data["environment"]["name"]),
                started_at=str(data["started_at"]),
                outcome=str(data["outcome"]),
                score=_opt(data["score"]),
                rating=data["rating"],
                msp_score=_opt(parties["msp"]["score"]),
                client_score=_opt(parties["client"]["score"]),
                rto_target_s=_opt(rto["target_s"]),
                rto_actual_s=_opt(rto["actual_s"]),
                rto_met=rto["met"],
                outage_s=float(impact["outage_s"]),
                person_hours=float(impact["person_hours"]),
                cost=float(impact["cost"]),
                currency=str(impact["currency"]),
                findings=len(data["findings"]),
                run_class=str(data.get("class", "rehearsal")),
                time_scale=float(data.get("time_scale", 1.0)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"debrief {data.get('run_id')!r} lacks field {exc}") from exc

    @classmethod
    def of(cls, debrief: Debrief) -> RunSummary:
        """The summary of a debrief model."""
        return cls.from_json(debrief.to_json())


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
