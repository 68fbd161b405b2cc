"""The journal's vocabulary: every record type, and the layout of ``run.started``.

Writers and readers import these names; no other module spells a record type. A record
type is a :class:`RecordType` (a ``str``), so it is written to and compared with the JSON
lines as the plain string it stands for (``RecordType.FAULT_INTENT == "fault.intent"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RecordType(StrEnum):
    """Every type of record a run journal holds, in the order a run usually writes them."""

    RUN_STARTED = "run.started"
    PREFLIGHT_PASSED = "preflight.passed"
    PREFLIGHT_FAILED = "preflight.failed"
    MOMENT_AWAITED = "moment.awaited"  # a scheduled drill, ready early, waits for its secret moment
    MOMENT_REACHED = "moment.reached"  # the wait is over (``late_s``: how far past the moment)
    FAULT_INTENT = "fault.intent"  # written *before* acting, so recover can always undo it
    FAULT_APPLIED = "fault.applied"
    FAULT_INJECT_FAILED = "fault.inject_failed"
    PROBE_CHANGED = "probe.changed"
    PROBE_MEASURED = "probe.measured"
    STEP_RECORDED = "step.recorded"
    STEP_REJECTED = "step.rejected"
    FAULT_HANDED_OVER = "fault.handed_over"  # its ``until`` step came; the responders restore it
    STEP_UPDATE = "step.update"  # a repeat of a step with an update cadence (a status update)
    INJECT_SENT = "inject.sent"  # an alert or inject delivered (desk or an outside channel)
    INJECT_FAILED = "inject.failed"  # a delivery that did not go out, with the reason
    ENTRY_LOGGED = "entry.logged"  # a player's free-text entry, for the evaluator to map
    ENTRY_MAPPED = "entry.mapped"  # an evaluator mapped an entry to a step (or to no step)
    STEP_CORRECTED = "step.corrected"  # an evaluator moved a step record to another step
    OBSERVATION_RECORDED = "observation.recorded"  # an evaluator's strength / area for improvement
    RATING_RECORDED = "rating.recorded"  # an evaluator's HSEEP rating (P/S/M/U) of a capability
    FAULT_REVERTED = "fault.reverted"
    FAULT_REVERT_FAILED = "fault.revert_failed"
    RESTORE_VERIFIED = "restore.verified"
    RESTORE_FAILED = "restore.failed"
    HOTWASH_OPENED = "hotwash.opened"  # ENDEX: faults reverted, steps settled; the survey is open
    HOTWASH_ANSWERED = "hotwash.answered"  # one participant's hotwash survey answers
    RUN_ABORTED = "run.aborted"
    RUN_FAILED = "run.failed"
    RUN_ENDED = "run.ended"
    RECOVER_STARTED = "recover.started"
    RECOVER_FINISHED = "recover.finished"
    JOURNAL_TAIL_REPAIRED = "journal.tail_repaired"  # a torn last line moved to a side file


class RunClass(StrEnum):
    """What a run counts as, recorded as ``class`` in ``run.started``.

    Only completed ``drill`` runs feed a client's trend, year-on-year figures and
    improvement plan; rehearsals and CI runs are looked at separately.
    """

    DRILL = "drill"  # an official, unannounced drill
    REHEARSAL = "rehearsal"  # people or simulated responders practising; not official
    CI = "ci"  # an automated run (``--responders auto``)


def resolve_run_class(
    explicit: str | None, responders: str, from_plan: bool, time_scale: float = 1.0
) -> RunClass:
    """The class of a new run: as given, else ``ci`` for automatic responders, ``drill`` for a
    run started by a drill plan, ``rehearsal`` otherwise.

    An official drill is people answering in real time: ``drill`` needs manual responders at
    time scale 1. A plan's run with simulated responders or a scaled clock is a rehearsal;
    ``drill`` asked for explicitly with either is a ``ValueError``, as is an unknown class."""
    real = responders == "manual" and time_scale == 1
    if explicit is None:
        if responders == "auto":
            return RunClass.CI
        return RunClass.DRILL if from_plan and real else RunClass.REHEARSAL
    try:
        chosen = RunClass(explicit)
    except ValueError:
        known = ", ".join(c.value for c in RunClass)
        raise ValueError(f"run class must be one of {known}, not {explicit!r}") from None
    if chosen is RunClass.DRILL and not real:
        how = f"responders {responders}" if responders != "manual" else f"time scale {time_scale:g}"
        raise ValueError(
            f"an official drill is answered by people in real time (responders manual, time scale 1), "
            f"not with {how}: use class rehearsal or ci"
        )
    return chosen


def run_class_of(started: Mapping[str, Any]) -> RunClass:
    """The class of a run from the ``data`` of its ``run.started`` record.

    Runs journaled before classes existed read as ``rehearsal``, unless a drill plan started
    them (``plan`` names it), which makes them ``drill``.
    """
    value = started.get("class")
    if value in {c.value for c in RunClass}:
        return RunClass(value)
    return RunClass.DRILL if started.get("plan") else RunClass.REHEARSAL


__all__ = [
    "RecordType",
    "RunClass",
    "RunStarted",
    "StartedFault",
    "StartedProbe",
    "StartedStep",
    "resolve_run_class",
    "run_class_of",
]


# ---------------------------------------------------------------- the run.started layout


@dataclass(frozen=True)
class StartedStep:
    """A response step as ``run.started`` keeps it."""

    key: str  # "msp.acknowledge"
    party: str
    id: str
    title: str
    within_s: float
    after: str | None = None
    weight: float = 1.0
    recorded_by: str = "ack"  # ack | webhook | decision | probe
    probe: str | None = None  # for recorded_by == "probe"
    state: str | None = None
    runbook: str | None = None  # what the runbook automation does, in words

    def to_data(self) -> dict[str, Any]:
        return {
            "key": self.key, "party": self.party, "id": self.id, "title": self.title,
            "within_s": self.within_s, "after": self.after, "weight": self.weight,
            "runbook": self.runbook,
            "recorded_by": {"kind": self.recorded_by, "probe": self.probe, "state": self.state},
        }  # fmt: skip

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> StartedStep:
        how = data.get("recorded_by") or {}
        return cls(
            str(data["key"]), str(data["party"]), str(data["id"]), str(data["title"]),
            float(data["within_s"]), _opt_str(data.get("after")), float(data.get("weight", 1.0)),
            str(how.get("kind", "ack")), _opt_str(how.get("probe")), _opt_str(how.get("state")),
            _opt_str(data.get("runbook")),
        )  # fmt: skip


@dataclass(frozen=True)
class StartedFault:
    """A playbook fault as ``run.started`` keeps it."""

    id: str
    action: str
    target: str
    at_s: float = 0.0
    duration_s: float | None = None
    until: str | None = None
    restore: str = "engine"  # who restores the service at its ``until`` step: engine | responders

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> StartedFault:
        duration = data.get("duration_s")
        return cls(
            str(data["id"]), str(data.get("action", "")), str(data.get("target", "")),
            float(data.get("at_s") or 0.0), None if duration is None else float(duration),
            _opt_str(data.get("until")), str(data.get("restore") or "engine"),
        )  # fmt: skip


@dataclass(frozen=True)
class StartedProbe:
    """A probe as ``run.started`` keeps it (its interval is the resolution of what it saw)."""

    id: str
    kind: str
    interval_s: float
    timeout_s: float

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> StartedProbe:
        return cls(str(data["id"]), str(data.get("kind", "")), float(data["interval_s"]),
                   float(data.get("timeout_s", 0.0)))  # fmt: skip


@dataclass(frozen=True)
class RunStarted:
    """The ``data`` of a ``run.started`` record: the scenario as it ran.

    The one place that writes (:meth:`to_data`) and reads (:meth:`from_data`) the layout;
    reading tolerates journals written before a field existed (its default applies).
    """

    run_id: str
    playbook_id: str
    title: str
    environment: str
    environment_kind: str
    responders: str
    steps: tuple[StartedStep, ...]
    summary: str = ""
    severity: str = ""
    playbook_path: str | None = None
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    client: str = ""
    time_scale: float = 1.0
    seed: int | None = None
    host: str = ""
    pid: int = 0
    engine_version: str = ""
    faults: tuple[StartedFault, ...] = ()
    probes: tuple[StartedProbe, ...] = ()
    steady_state: tuple[str, ...] = ()
    rto_s: float | None = None
    rpo_s: float | None = None
    rpo_probe: str | None = None
    weights: Mapping[str, float] = field(default_factory=lambda: {"msp": 0.5, "client": 0.5})
    late_limit: float = 3.0
    bands: Mapping[str, float] = field(default_factory=lambda: {"P": 90.0, "S": 70.0, "M": 40.0})
    pass_score: float = 0.0
    users_affected: int = 0
    hourly_cost: float = 0.0
    currency: str = "EUR"
    max_duration_s: float | None = None
    abort_when: tuple[str, ...] = ()
    exercise: Mapping[str, Any] | None = None  # the exercise script (engine.run.injects layout)
    run_class: str | None = None  # drill | rehearsal | ci; None in journals before classes (run_class_of)
    plan: str | None = None  # the drill plan that started the run, if one did
    signing_key: str | None = None  # fingerprint of the MSP key the run is signed with
    participants: tuple[tuple[str, str, str], ...] = ()  # (name, party, role): who may own an action

    def to_data(self) -> dict[str, Any]:
        """The JSON-able record data."""
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "playbook": {
                "id": self.playbook_id, "title": self.title, "summary": self.summary,
                "severity": self.severity, "path": self.playbook_path,
                "translations": {lang: dict(texts) for lang, texts in self.translations.items()},
            },
            "environment": {"name": self.environment, "kind": self.environment_kind, "client": self.client},
            "responders": self.responders, "time_scale": self.time_scale, "seed": self.seed,
            "host": self.host, "pid": self.pid, "engine_version": self.engine_version,
            "steps": [s.to_data() for s in self.steps],
            "faults": [f.to_data() for f in self.faults],
            "probes": [p.to_data() for p in self.probes],
            "steady_state": list(self.steady_state),
            "objectives": {"rto_s": self.rto_s, "rpo_s": self.rpo_s, "rpo_probe": self.rpo_probe},
            "scoring": {"weights": dict(self.weights), "late_limit": self.late_limit,
                        "bands": dict(self.bands), "pass_score": self.pass_score},
            "impact": {"users_affected": self.users_affected, "hourly_cost": self.hourly_cost,
                       "currency": self.currency},
            "safety": {"max_duration_s": self.max_duration_s, "abort_when": list(self.abort_when)},
        }  # fmt: skip
        if self.exercise is not None:
            data["exercise"] = dict(self.exercise)
        if self.run_class is not None:
            data["class"] = self.run_class
        data["plan"], data["signing_key"] = self.plan, self.signing_key
        data["participants"] = [{"name": n, "party": p, "role": r} for n, p, r in self.participants]
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RunStarted:
        """Read a ``run.started`` data mapping; ``KeyError``/``TypeError``/``ValueError`` when malformed."""
        book, env = data["playbook"], data["environment"]
        objectives, scoring = data.get("objectives") or {}, data["scoring"]
        impact, safety = data.get("impact") or {}, data.get("safety") or {}
        return cls(
            run_id=str(data["run_id"]), playbook_id=str(book["id"]), title=str(book["title"]),
            environment=str(env["name"]), environment_kind=str(env["kind"]),
            responders=str(data["responders"]),
            steps=tuple(StartedStep.from_data(s) for s in data["steps"]),
            summary=str(book.get("summary") or ""), severity=str(book.get("severity") or ""),
            playbook_path=_opt_str(book.get("path")), translations=_translations(book.get("translations")),
            client=str(env.get("client") or ""), time_scale=float(data.get("time_scale", 1.0)),
            seed=data.get("seed"), host=str(data.get("host") or ""), pid=int(data.get("pid") or 0),
            engine_version=str(data.get("engine_version") or ""),
            faults=tuple(StartedFault.from_data(f) for f in data.get("faults", [])),
            probes=tuple(StartedProbe.from_data(p) for p in data.get("probes", [])),
            steady_state=tuple(str(p) for p in data.get("steady_state", [])),
            rto_s=_opt_float(objectives.get("rto_s")), rpo_s=_opt_float(objectives.get("rpo_s")),
            rpo_probe=_opt_str(objectives.get("rpo_probe")),
            weights={"msp": float(scoring["weights"]["msp"]), "client": float(scoring["weights"]["client"])},
            late_limit=float(scoring["late_limit"]),
            bands={band: float(scoring["bands"][band]) for band in ("P", "S", "M")},
            pass_score=float(scoring.get("pass_score", 0.0)),
            users_affected=int(impact.get("users_affected", 0)),
            hourly_cost=float(impact.get("hourly_cost", 0.0)), currency=str(impact.get("currency", "EUR")),
            max_duration_s=_opt_float(safety.get("max_duration_s")),
            abort_when=tuple(str(p) for p in safety.get("abort_when", [])),
            exercise=data.get("exercise") if isinstance(data.get("exercise"), Mapping) else None,
            run_class=_opt_str(data.get("class")), plan=_opt_str(data.get("plan")),
            signing_key=_opt_str(data.get("signing_key")),
            participants=tuple(_participant(p) for p in data.get("participants", [])),
        )  # fmt: skip


def _participant(data: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(data["name"]), str(data["party"]), str(data.get("role", ""))


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _translations(value: Any) -> dict[str, dict[str, str]]:
    """The playbook's other languages (absent in older journals)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(lang): {str(k): str(v) for k, v in texts.items()} for lang, texts in value.items()
            if isinstance(texts, Mapping)}  # fmt: skip
