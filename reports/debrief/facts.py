"""Read a run journal once into typed facts; scoring and rendering never see raw records.

The journal contract (record types and their ``data``) is the engine's; this module is the
only place in :mod:`reports` that knows the record layout. A record missing a field the
debrief needs raises :class:`~engine.errors.JournalError` naming the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from engine.errors import JournalError
from engine.record.journal import JournalContents
from engine.record.records import RecordType, RunStarted, run_class_of
from engine.record.steps import current_step_records


@dataclass(frozen=True)
class StepSpec:
    """A response step as the run announced it in ``run.started`` (durations already scaled)."""

    key: str
    party: str
    id: str
    title: str
    within_s: float
    recorded_by: str  # ack | webhook | probe
    weight: float


@dataclass(frozen=True)
class ProbeInfo:
    """A probe's id and how often it looked (the resolution of every time derived from it)."""

    id: str
    interval_s: float


@dataclass(frozen=True)
class FaultPlanInfo:
    """A playbook fault as ``run.started`` announced it: which step ends it and who restores."""

    id: str
    until: str | None
    restore: str  # responders | engine


@dataclass(frozen=True)
class ScoringSpec:
    """Party weights, late-credit limit, rating bands and the pass mark."""

    weight_msp: float
    weight_client: float
    late_limit: float
    band_p: float
    band_s: float
    band_m: float
    pass_score: float


@dataclass(frozen=True)
class RunSpec:
    """What ``run.started`` says about the run."""

    run_id: str
    playbook_id: str
    playbook_title: str
    environment_name: str
    environment_kind: str
    client: str
    responders: str
    time_scale: float
    steps: tuple[StepSpec, ...]
    probes: tuple[ProbeInfo, ...]
    steady_state: tuple[str, ...]
    rto_s: float | None
    rpo_s: float | None
    scoring: ScoringSpec
    users_affected: int
    hourly_cost: float
    currency: str
    rpo_probe: str | None = None
    faults: tuple[FaultPlanInfo, ...] = ()
    automated_steps: frozenset[str] = frozenset()  # steps with runbook automation
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # lang -> text id -> text
    run_class: str = "rehearsal"  # drill | rehearsal | ci (see engine.record.records.run_class_of)
    participants: tuple[ParticipantInfo, ...] = ()
    signing_key: str | None = None  # fingerprint of the MSP key the run is signed with


@dataclass(frozen=True)
class ParticipantInfo:
    """A person named in the environment, as ``run.started`` lists them (no contact details)."""

    name: str
    party: str
    role: str = ""


NO_RECORD = "none"  # a data loss's ``surviving`` when no record survived


@dataclass(frozen=True)
class DataLossFact:
    """A ``data`` probe's recovery-point measurement (from its ``probe.measured`` record).

    ``rpo_s`` is real seconds of lost writes (never time-scaled); ``surviving`` and ``seen``
    are ``seq@unixtime`` of the newest surviving record and the newest seen before the loss.
    """

    probe: str
    t: float
    rpo_s: float
    surviving: str
    seen: str

    @property
    def nothing_survived(self) -> bool:
        """No record written at or before ``seen`` survived: ``rpo_s`` is only a lower bound."""
        return self.surviving == NO_RECORD


@dataclass(frozen=True)
class ProbeChange:
    """A probe changed state (its first record is its initial state)."""

    probe: str
    state: str
    t: float


@dataclass(frozen=True)
class StepRecord:
    """A response step was recorded."""

    key: str
    t: float
    by: str
    source: str


@dataclass(frozen=True)
class FaultTrack:
    """Everything the journal says about one fault, from intent to revert."""

    id: str
    action: str
    target: str
    intent_t: float
    applied_t: float | None
    inject_error: str | None
    reverted_t: float | None
    verified: bool | None
    revert_error: str | None
    recovered: bool = False  # reverted later by ``bcdrill recover``, not by the run itself
    effective_t: float | None = None  # when it took effect, from the target's own clock
    effective_source: str = ""  # where ``effective_t`` comes from, e.g. the Docker daemon's events
    handed_over_t: float | None = None  # its ``until`` step came; left to the responders
    already_restored: bool | None = None  # at the engine's revert, someone had restored it
    target_name: str = ""  # the logical target (``storefront``), as the playbook names it


@dataclass(frozen=True)
class Event:
    """A run-level event with a reason: abort, preflight failure, restore failure."""

    t: float
    reason: str
    by: str = ""


@dataclass(frozen=True)
class RunFacts:
    """All the facts a debrief is computed from."""

    spec: RunSpec
    started_at: str
    started_t: float
    ended_at: str
    end_t: float
    probe_changes: tuple[ProbeChange, ...]
    step_records: tuple[StepRecord, ...]
    faults: tuple[FaultTrack, ...]
    aborted: Event | None
    preflight_failed: Event | None
    run_failed: Event | None
    restore_failed: Event | None
    data_losses: tuple[DataLossFact, ...] = ()
    crashed: Event | None = None  # the engine stopped without ending the run; recover finished it
    head_hash: str = ""  # hash of the journal's last record
    record_count: int = 0


def _need(record: dict[str, Any], *path: str) -> Any:
    """The value at ``record[path...]``, or a :class:`JournalError` naming the record."""
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise JournalError(
                f"journal record seq {record.get('seq')!r} ({record.get('type')!r}) "
                f"lacks field {'.'.join(path)!r}; the journal is not a complete bcdrill run"
            )
        value = value[key]
    return value


def _parse_spec(record: dict[str, Any]) -> RunSpec:
    """The run's spec from its ``run.started`` record (layout: engine.record.records.RunStarted)."""
    started = RunStarted.from_data(_need(record, "data"))
    return RunSpec(
        run_id=started.run_id,
        playbook_id=started.playbook_id,
        playbook_title=started.title,
        environment_name=started.environment,
        environment_kind=started.environment_kind,
        client=started.client,
        responders=started.responders,
        time_scale=started.time_scale,
        steps=tuple(
            StepSpec(s.key, s.party, s.id, s.title, s.within_s, s.recorded_by, s.weight)
            for s in started.steps
        ),
        probes=tuple(ProbeInfo(p.id, p.interval_s) for p in started.probes),
        steady_state=started.steady_state,
        rto_s=started.rto_s,
        rpo_s=started.rpo_s,
        scoring=ScoringSpec(
            weight_msp=started.weights["msp"],
            weight_client=started.weights["client"],
            late_limit=started.late_limit,
            band_p=started.bands["P"],
            band_s=started.bands["S"],
            band_m=started.bands["M"],
            pass_score=started.pass_score,
        ),
        users_affected=started.users_affected,
        hourly_cost=started.hourly_cost,
        currency=started.currency,
        rpo_probe=started.rpo_probe,
        faults=tuple(FaultPlanInfo(f.id, f.until, f.restore) for f in started.faults),
        automated_steps=frozenset(s.key for s in started.steps if s.runbook),
        translations=started.translations,
        run_class=run_class_of(record["data"]).value,
        participants=tuple(ParticipantInfo(n, p, r) for n, p, r in started.participants),
        signing_key=started.signing_key,
    )


class _FaultBuilder:
    """Collects the records of one fault id in journal order."""

    def __init__(self, fault_id: str, action: str, target: str, t: float, target_name: str = "") -> None:
        self.track = FaultTrack(
            fault_id, action, target, t, None, None, None, None, None, target_name=target_name
        )

    def update(self, **changes: Any) -> None:
        """Set fields that are still unset (the first record of each kind wins)."""
        fresh = {k: v for k, v in changes.items() if getattr(self.track, k) is None}
        self.track = replace(self.track, **fresh)


def _target_name(data: dict[str, Any]) -> str:
    target = data.get("target")
    return str(target.get("name") or "") if isinstance(target, dict) else ""


def _target_label(data: dict[str, Any]) -> str:
    target = data.get("target")
    if isinstance(target, dict):
        return str(target.get("label") or target.get("name") or "")
    return str(target or "")


def _collect_faults(contents: JournalContents, times: _Times) -> tuple[FaultTrack, ...]:
    builders: dict[str, _FaultBuilder] = {}
    for record in contents.records:
        kind, t, data = record["type"], times.of(record), record.get("data") or {}
        if not kind.startswith("fault."):
            continue
        fault_id = str(_need(record, "data", "fault"))
        if kind == RecordType.FAULT_INTENT:
            builder = _FaultBuilder(
                fault_id, str(data.get("action", "")), _target_label(data), t, _target_name(data)
            )
            builders.setdefault(fault_id, builder)
            continue
        builder = builders.setdefault(fault_id, _FaultBuilder(fault_id, "", "", t))
        if kind == RecordType.FAULT_APPLIED:
            builder.update(applied_t=t)
            if data.get("effective_t") is not None and not times.recovering(record):
                builder.update(effective_t=float(data["effective_t"]))
                builder.track = replace(builder.track, effective_source=str(data.get("effective_source", "")))
        elif kind == RecordType.FAULT_HANDED_OVER:
            builder.update(handed_over_t=t)
        elif kind == RecordType.FAULT_INJECT_FAILED:
            builder.update(inject_error=str(data.get("error", "")))
        elif kind == RecordType.FAULT_REVERTED and builder.track.reverted_t is None:
            builder.track = replace(
                builder.track,
                reverted_t=t,
                verified=bool(data.get("verified", False)),
                recovered=times.recovering(record),
                already_restored=None if "already_restored" not in data else bool(data["already_restored"]),
            )
        elif kind == RecordType.FAULT_REVERT_FAILED:
            builder.update(revert_error=str(data.get("error", "")), verified=False)
    return tuple(b.track for b in builders.values())


def _first_event(contents: JournalContents, kind: str, times: _Times) -> Event | None:
    record = next(contents.of_type(kind), None)
    if record is None:
        return None
    data = record.get("data") or {}
    return Event(times.of(record), str(data.get("reason", "")), str(data.get("by", "")))


class _Times:
    """Run offsets of records, consistent across a later ``bcdrill recover``.

    ``recover`` appends to the journal with a fresh clock, so from its ``recover.started``
    record on, ``t`` restarts near zero; those records' offsets are derived from their UTC
    ``at`` against the run's start instead.
    """

    def __init__(self, contents: JournalContents, started: dict[str, Any]) -> None:
        self._start_t = float(started["t"])
        self._start_at = _parse_at(started)
        first = next(contents.of_type(RecordType.RECOVER_STARTED), None)
        self._recover_seq = None if first is None else int(first["seq"])

    def recovering(self, record: dict[str, Any]) -> bool:
        """True for records written by ``bcdrill recover``."""
        return self._recover_seq is not None and int(record["seq"]) >= self._recover_seq

    def of(self, record: dict[str, Any]) -> float:
        """Seconds since run start of ``record``."""
        if not self.recovering(record):
            return float(record["t"])
        return self._start_t + (_parse_at(record) - self._start_at).total_seconds()


def impact_t(fault: FaultTrack) -> float | None:
    """When ``fault`` took effect: the target's own time (the Docker daemon's event) when the
    journal has it, else its ``fault.applied`` record; None when it was never applied."""
    if fault.applied_t is None:
        return None
    return fault.effective_t if fault.effective_t is not None else fault.applied_t


def impact_start(faults: tuple[FaultTrack, ...]) -> float | None:
    """The impact start: when the first fault took effect, or ``None`` if nothing was applied."""
    applied = [t for f in faults if (t := impact_t(f)) is not None]
    return min(applied) if applied else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _step_t(record: dict[str, Any], times: _Times, anchor: float | None) -> float:
    """When a step was done: the time the engine accepted for it (``acted_t``: the client's
    stamp, the ack's arrival, or the probe's observation), else the moment its probe observed
    the state (``observed_t``, never before impact start: journals written before probe steps
    carried ``acted_t``), else the record's time."""
    data = record["data"]
    if times.recovering(record):
        return times.of(record)
    acted = _number(data.get("acted_t"))
    if acted is not None:
        return acted
    observed = _number(data.get("observed_t"))
    if observed is None:
        return times.of(record)
    return observed if anchor is None else max(observed, anchor)


def _parse_at(record: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError) as exc:
        raise JournalError(
            f"journal record seq {record.get('seq')!r} has no valid UTC time 'at': {exc}"
        ) from exc


def _observed(record: dict[str, Any], times: _Times) -> float:
    """When what ``record`` reports became observable: its ``observed_t`` (a probe transition
    stamped at the check that saw it) when the run wrote one, else the record's own time."""
    observed = (record.get("data") or {}).get("observed_t")
    if observed is None or times.recovering(record):
        return times.of(record)
    return float(observed)


def _record_label(record: Any) -> str:
    """``seq@unixtime`` of a measured record (``{"seq", "ts"}``), ``none`` when there is none."""
    if record is None:
        return NO_RECORD
    return f"{int(record['seq'])}@{float(record['ts'])}"


def _data_loss(record: dict[str, Any], times: _Times) -> DataLossFact | None:
    """The recovery-point measurement of one ``probe.measured`` record (None for other kinds)."""
    measurement = _need(record, "data", "measurement")
    if not isinstance(measurement, dict) or "rpo_s" not in measurement:
        return None
    try:
        return DataLossFact(
            probe=str(_need(record, "data", "probe")),
            t=times.of(record),
            rpo_s=float(measurement["rpo_s"]),
            surviving=_record_label(measurement.get("surviving")),
            seen=_record_label(measurement.get("seen")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(
            f"journal record seq {record.get('seq')!r} ('probe.measured'): bad data measurement "
            f"{measurement!r}: {exc!r}"
        ) from exc


def _data_losses(contents: JournalContents, times: _Times) -> tuple[DataLossFact, ...]:
    """Recovery-point measurements journaled by ``data`` probes (one per distinct loss)."""
    losses: dict[tuple[str, str, str], DataLossFact] = {}
    for record in contents.of_type(RecordType.PROBE_MEASURED):
        fact = _data_loss(record, times)
        if fact is not None:
            losses.setdefault((fact.probe, fact.surviving, fact.seen), fact)
    return tuple(losses.values())


CRASH_REASON = "the engine stopped unexpectedly"


def _crash(contents: JournalContents, times: _Times) -> Event | None:
    """The engine's last word when it stopped without ``run.ended`` (killed, the machine lost):
    the last record it wrote before ``bcdrill recover`` finished the run, or before the journal
    ends when nothing has finished it yet."""
    recover = next(contents.of_type(RecordType.RECOVER_STARTED), None)
    cut = len(contents.records) if recover is None else int(recover["seq"])
    before = [r for r in contents.records if int(r["seq"]) < cut]
    if any(r["type"] == RecordType.RUN_ENDED for r in before):
        return None
    last = before[-1] if before else contents.records[-1]
    finished = "bcdrill recover finished the run" if recover else "the journal ends without run.ended"
    return Event(times.of(last), f"{CRASH_REASON}; {finished}", "recover" if recover else "")


def read_facts(contents: JournalContents) -> RunFacts:
    """Turn verified journal records into :class:`RunFacts`."""
    started = next(contents.of_type(RecordType.RUN_STARTED), None)
    if started is None:
        raise JournalError("the journal has no 'run.started' record: it is not a bcdrill run")
    try:
        spec = _parse_spec(started)
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(
            f"journal record seq {started.get('seq')!r} ('run.started') is malformed: {exc!r}"
        ) from exc
    times = _Times(contents, started)
    ended = next(contents.of_type(RecordType.RUN_ENDED), contents.records[-1])
    faults = _collect_faults(contents, times)
    anchor = impact_start(faults)
    probe_changes = tuple(
        ProbeChange(str(_need(r, "data", "probe")), str(_need(r, "data", "state")), _observed(r, times))
        for r in contents.of_type(RecordType.PROBE_CHANGED)
    )
    step_records = tuple(
        StepRecord(
            key=str(_need(r, "data", "step")),
            t=_step_t(r, times, anchor),
            by=str(r["data"].get("by", "")),
            source=str(r["data"].get("source", "")),
        )
        for r in current_step_records(contents.records)
    )
    return RunFacts(
        spec=spec,
        started_at=str(started["at"]),
        started_t=float(started["t"]),
        ended_at=str(ended["at"]),
        end_t=times.of(ended),
        probe_changes=probe_changes,
        step_records=step_records,
        faults=faults,
        aborted=_first_event(contents, RecordType.RUN_ABORTED, times),
        preflight_failed=_first_event(contents, RecordType.PREFLIGHT_FAILED, times),
        run_failed=_first_event(contents, RecordType.RUN_FAILED, times),
        restore_failed=_first_event(contents, RecordType.RESTORE_FAILED, times),
        data_losses=_data_losses(contents, times),
        crashed=_crash(contents, times),
        head_hash=str(contents.records[-1]["hash"]),
        record_count=len(contents.records),
    )
