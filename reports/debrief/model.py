"""The debrief model (schema ``bcdrill/debrief/v1``): frozen dataclasses with ``to_json()``.

Times are seconds from the first fault's ``applied`` record ("impact start"). Every float is
rounded to three places in the JSON form so that the same journal always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from decimal import ROUND_DOWN, Decimal
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from reports.debrief.exercise_model import ExerciseResults

SCHEMA_ID = "bcdrill/debrief/v1"

Outcome = Literal["passed", "failed", "aborted", "void"]
RunClassName = Literal["drill", "rehearsal", "ci"]
Rating = Literal["P", "S", "M", "U"]
StepStatus = Literal["on_time", "late", "missed", "not_exercised", "not_reached"]
FaultStatus = Literal["intended", "applied", "inject_failed", "reverted", "revert_failed"]
Severity = Literal["critical", "high", "medium", "low"]
Party = Literal["msp", "client"]
FindingParty = Literal["msp", "client", "drill"]
ProbeState = Literal["up", "down"]
OutageBasis = Literal["recovered", "restored_by_engine", "until_run_end", "none"]
Audience = Literal["client", "internal"]
NoteKind = Literal["step_note", "diagnostic", "manual_revert"]
FollowUpResult = Literal["improved", "same", "worse", "not_retested", "closed"]
MessageParam = str | int | float | None


@dataclass(frozen=True)
class Message:
    """A translatable text: a catalogue ``key`` and its placeholder values (JSON scalars).

    The English text of the same message is kept next to it (``title``, ``evidence``…) so
    that the JSON stays readable; renderers translate from the key (see :mod:`reports.i18n`).
    """

    key: str
    params: Mapping[str, MessageParam] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaybookRef:
    """Which playbook ran."""

    id: str
    title: str


@dataclass(frozen=True)
class EnvironmentRef:
    """Where it ran."""

    name: str
    kind: str


@dataclass(frozen=True)
class PartyScore:
    """One party's score and rating; both ``None`` when none of its steps counted."""

    score: float | None
    rating: Rating | None


@dataclass(frozen=True)
class Parties:
    """The two parties of a drill."""

    msp: PartyScore
    client: PartyScore


@dataclass(frozen=True)
class StepResult:
    """How one response step went against its target."""

    party: str
    id: str
    title: str
    target_s: float
    actual_s: float | None
    status: StepStatus
    score: float | None  # None when the step does not count (not exercised)


@dataclass(frozen=True)
class ObjectiveResult:
    """A recovery objective: target, measured value and verdict (``None`` = not measured)."""

    target_s: float | None
    actual_s: float | None
    met: bool | None
    note: str


@dataclass(frozen=True)
class ObjectiveResults:
    """Recovery time and recovery point objectives."""

    rto: ObjectiveResult
    rpo: ObjectiveResult


@dataclass(frozen=True)
class FaultResult:
    """One injected fault (one per target) and whether it was undone."""

    id: str
    action: str
    target: str
    status: FaultStatus
    applied_at: float | None
    reverted_at: float | None
    revert_verified: bool | None
    target_name: str = ""  # the logical target as the playbook names it (``storefront``)


@dataclass(frozen=True)
class ImpactResult:
    """The outage in business language: person-hours lost and what it cost."""

    users_affected: int
    outage_s: float
    outage_basis: OutageBasis
    person_hours: float
    hourly_cost: float
    cost: float
    currency: str


@dataclass(frozen=True)
class Finding:
    """Something that went wrong, with the evidence from the journal."""

    id: str
    severity: Severity
    party: FindingParty
    title: str
    evidence: str
    subject: str = ""  # what was tested: ``step:msp.inform``, ``objective:rto``, ``drill:aborted``…
    title_msg: Message | None = None
    evidence_msg: Message | None = None


@dataclass(frozen=True)
class Improvement:
    """One agreed action per finding: who does what, by when."""

    finding: str
    owner_party: Party
    action: str
    due_in_days: int
    subject: str = ""
    action_msg: Message | None = None
    owner: str | None = None  # a named person of the owner party (from the environment's participants)
    due_by: str | None = None  # ISO date: the drill's date plus ``due_in_days``


@dataclass(frozen=True)
class StateBand:
    """A probe held ``state`` from ``from_s`` to ``to_s``."""

    from_s: float
    to_s: float
    state: ProbeState


@dataclass(frozen=True)
class ProbeTrack:
    """The up/down history of one probe, for the timeline chart."""

    probe: str
    steady_state: bool
    bands: tuple[StateBand, ...]


@dataclass(frozen=True)
class FaultWindow:
    """When a fault was in place (``to_s`` ``None``: never reverted)."""

    id: str
    from_s: float
    to_s: float | None


@dataclass(frozen=True)
class StepMark:
    """A step's target and the moment it was recorded, for the timeline chart."""

    party: str
    id: str
    title: str
    target_s: float
    actual_s: float | None
    status: StepStatus
    by: str | None
    source: str | None


@dataclass(frozen=True)
class Timeline:
    """Everything a chart needs, in seconds from ``origin`` (impact start, or run start)."""

    origin: Literal["impact_start", "run_start"]
    start_s: float
    end_s: float
    probes: tuple[ProbeTrack, ...]
    faults: tuple[FaultWindow, ...]
    steps: tuple[StepMark, ...]


@dataclass(frozen=True)
class Note:
    """A remark from the journal: a responder's step note, an engine diagnostic, a manual command.

    ``audience`` is ``internal`` for everything the client version must leave out (the MSP's
    own step notes, engine errors, manual revert commands), ``client`` otherwise.
    """

    at_s: float | None
    kind: NoteKind
    audience: Audience
    party: FindingParty
    by: str
    subject: str
    text: str


@dataclass(frozen=True)
class Measure:
    """How one tested thing went in one drill: a status word, a time and a score (if any)."""

    status: str
    value_s: float | None
    score: float | None


@dataclass(frozen=True)
class FollowUp:
    """An improvement agreed after an earlier drill, and whether this drill re-tested it."""

    from_run: str
    from_started_at: str
    finding: str
    subject: str
    owner_party: Party
    action: str
    action_msg: Message | None
    retested: bool
    result: FollowUpResult
    before: Measure
    after: Measure | None
    owner: str | None = None
    closed_note: str | None = None  # why it was closed by hand (``bcdrill improvements close``)


@dataclass(frozen=True)
class Comparison:
    """This drill against the previous drill of the same client and scenario."""

    previous_run: str
    previous_started_at: str
    days_between: float
    previous_score: float | None
    previous_outage_s: float
    previous_person_hours: float
    previous_cost: float
    score_change: float | None  # points; None when either score is missing
    person_hours_change_pct: float | None  # None when the previous drill lost nothing
    cost_change_pct: float | None


@dataclass(frozen=True)
class Evidence:
    """What the signed journal head says: the last record's hash, the record count and the key.

    ``key_fingerprint`` is ``None`` when no MSP signing key was configured for the run.
    """

    head_hash: str
    records: int
    key_fingerprint: str | None


def score_text(value: float | None) -> str:
    """A 0-100 score as people read it: one decimal, cut (not rounded) from the three-decimal
    score that ratings and the pass mark compare, so the figure shown never reads above the one
    judged (69.96 shows 69.9 under a pass mark of 70, not 70.0); a dash when nothing counted."""
    if value is None:
        return "—"
    return str(Decimal(f"{value:.3f}").quantize(Decimal("0.1"), rounding=ROUND_DOWN))


def json_name(item: Any) -> str:
    """The JSON key of a dataclass field (``run_class`` is written as ``class``)."""
    return str(item.metadata.get("json", item.name))


@dataclass(frozen=True)
class Debrief:
    """The scored debrief of one drill run."""

    schema: str
    run_id: str
    playbook: PlaybookRef
    environment: EnvironmentRef
    client: str
    responders: str
    time_scale: float
    started_at: str
    ended_at: str
    outcome: Outcome
    score: float | None
    rating: Rating | None
    resolution_s: float | None
    parties: Parties
    steps: tuple[StepResult, ...]
    objectives: ObjectiveResults
    faults: tuple[FaultResult, ...]
    impact: ImpactResult
    findings: tuple[Finding, ...]
    improvements: tuple[Improvement, ...]
    timeline: Timeline
    notes: tuple[Note, ...] = ()
    follow_up: tuple[FollowUp, ...] = ()
    comparison: Comparison | None = None
    # The playbook's texts in other languages: language -> text id (title, summary,
    # step:<party>.<id>) -> text (see engine.model.text).
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    exercise: ExerciseResults | None = None  # injects, decisions, players' entries
    run_class: RunClassName = field(default="rehearsal", metadata={"json": "class"})
    void_reason: str | None = None  # why the run is void (outcome ``void``)
    evidence: Evidence | None = None

    @property
    def official(self) -> bool:
        """True for an official drill (class ``drill``)."""
        return self.run_class == "drill"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data: dicts, lists, strings, rounded floats (no ``exercise`` key when it is None)."""
        result = plain(self)
        assert isinstance(result, dict)
        if result.get("exercise") is None:
            result.pop("exercise", None)
        return result

    def dumps(self) -> str:
        """Canonical JSON text (sorted keys, two-space indent, trailing newline)."""
        return json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Debrief:
        """Rebuild a debrief from its JSON form (e.g. a ``debrief.json`` of an earlier run).

        Raises :class:`ValueError` naming the field when ``data`` is not a v1 debrief.
        """
        if data.get("schema") != SCHEMA_ID:
            raise ValueError(f"not a {SCHEMA_ID} debrief: schema is {data.get('schema')!r}")
        result = from_plain(cls, data, "$")
        assert isinstance(result, Debrief)
        return result


def from_plain(kind: Any, value: Any, path: str = "$") -> Any:
    """Rebuild ``value`` as type ``kind`` (a dataclass, ``tuple[X, ...]``, ``X | None``, scalar)."""
    if is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, Mapping):
            raise ValueError(f"{path}: expected an object, got {value!r}")
        hints = get_type_hints(kind)
        missing = [json_name(f) for f in fields(kind) if json_name(f) not in value and _required(f)]
        if missing:
            raise ValueError(f"{path}: missing field {missing[0]!r}")
        return kind(
            **{
                f.name: from_plain(hints[f.name], value[json_name(f)], f"{path}.{json_name(f)}")
                for f in fields(kind)
                if json_name(f) in value
            }
        )
    origin = get_origin(kind)
    if origin is tuple:
        (item, _) = get_args(kind)
        return tuple(from_plain(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (Union, UnionType) and value is not None:
        (real,) = [a for a in get_args(kind) if a is not type(None)]
        return from_plain(real, value, path)
    if kind is float and isinstance(value, int):
        return float(value)
    return value


def _required(item: Any) -> bool:
    """True for a dataclass field without a default (older debriefs lack the optional ones)."""
    return bool(item.default is MISSING and item.default_factory is MISSING)


def plain(value: Any) -> Any:
    """Turn dataclasses and tuples into JSON data, rounding floats to three places."""
    if is_dataclass(value) and not isinstance(value, type):
        return {json_name(f): plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0
    return value
