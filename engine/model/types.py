"""Frozen, typed models of playbooks and environments. Built only by :mod:`engine.spec.loader`.

Durations are seconds (floats). Per-action and per-probe parameters stay as read-only
mappings validated by that action's or probe's own JSON Schema; everything else is typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from engine.model.exercise import Exercise
from engine.model.text import Translations

Party = Literal["msp", "client"]
PARTIES: tuple[Party, ...] = ("msp", "client")
EnvironmentKind = Literal["staging", "test", "production"]
Restore = Literal["responders", "engine"]


def frozen_mapping(data: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A read-only copy of ``data`` (nested dicts and lists frozen too)."""

    def freeze(value: Any) -> Any:
        if isinstance(value, Mapping):
            return MappingProxyType({k: freeze(v) for k, v in value.items()})
        if isinstance(value, list | tuple):
            return tuple(freeze(v) for v in value)
        return value

    frozen: Mapping[str, Any] = freeze(dict(data or {}))
    return frozen


def thaw(value: Any) -> Any:
    """Turn a frozen mapping back into plain JSON-able dicts and lists (for journals)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


# ---------------------------------------------------------------- playbook


@dataclass(frozen=True)
class ProbeSpec:
    """A probe that watches the service: ``kind`` (http, tcp, container, …) plus its params."""

    id: str
    kind: str
    target: str | None
    interval_s: float
    timeout_s: float
    params: Mapping[str, Any] = field(default_factory=frozen_mapping)


@dataclass(frozen=True)
class FaultSpec:
    """One fault on the timeline: ``action`` on ``target`` from ``at_s``.

    It ends after ``duration_s``, or when ``until`` (a step key like ``msp.mitigate``) is
    recorded, whichever comes first; with neither, it lasts until the drill ends.
    """

    id: str
    action: str
    target: str
    at_s: float
    duration_s: float | None
    until: str | None
    params: Mapping[str, Any] = field(default_factory=frozen_mapping)
    select_count: int | None = None  # hit only this many of the target's members…
    select_percent: float | None = None  # …or this share of them (chosen with the run's seed)
    restore: Restore | None = None  # who restores at ``until``; None: the action's default


@dataclass(frozen=True)
class RunbookAction:
    """A response step's runbook automation: what the ``auto`` responder (and the simulated
    MSP) really performs for the step, so the recovery measured is the runbook's.

    ``kind`` ``docker`` (``verb`` start/restart/unpause on ``target``'s containers),
    ``command`` (``verb`` is a shell command on ``target``'s SSH hosts) or ``http``
    (``verb`` is the method, called on ``url``).
    """

    kind: Literal["docker", "command", "http"]
    verb: str
    target: str | None = None
    url: str | None = None
    expect_status: int | None = None
    timeout_s: float = 30.0

    def describe(self) -> str:
        """One line for plans and reports, e.g. ``docker start storefront``."""
        if self.kind == "http":
            return f"HTTP {self.verb} {self.url}"
        if self.kind == "docker":
            return f"docker {self.verb} {self.target}"
        return f"on {self.target}: {self.verb}"


@dataclass(frozen=True)
class Recording:
    """How a response step gets recorded: a person's ``ack``, a ``webhook``, a ``probe``, or a
    ``decision`` (a choice with a one-line rationale, see :class:`engine.model.exercise.Decision`)."""

    kind: Literal["ack", "webhook", "probe", "decision"]
    probe: str | None = None
    state: Literal["up", "down"] | None = None


@dataclass(frozen=True)
class ResponseStep:
    """A step one party is expected to take, ``within_s`` seconds after impact starts."""

    party: Party
    id: str
    title: str
    within_s: float
    after: str | None
    recorded_by: Recording
    weight: float = 1.0
    runbook: RunbookAction | None = None

    @property
    def key(self) -> str:
        """``party.id``: how steps are named in acks, journals and debriefs."""
        return f"{self.party}.{self.id}"


@dataclass(frozen=True)
class Objectives:
    """Recovery time and recovery point objectives, in seconds."""

    rto_s: float | None
    rpo_s: float | None
    rpo_probe: str | None = None


@dataclass(frozen=True)
class Scoring:
    """Scoring knobs: party weights, the late-credit curve, rating bands, the pass mark."""

    weights: Mapping[str, float] = field(default_factory=lambda: frozen_mapping({"msp": 0.5, "client": 0.5}))
    late_limit: float = 3.0  # a step at late_limit × its target scores zero
    bands: Mapping[str, float] = field(
        default_factory=lambda: frozen_mapping({"P": 90.0, "S": 70.0, "M": 40.0})
    )
    pass_score: float = 70.0


@dataclass(frozen=True)
class Impact:
    """Business impact while the service is down, for business-language figures."""

    users_affected: int = 0
    hourly_cost: float = 0.0
    currency: str = "EUR"


@dataclass(frozen=True)
class Safety:
    """Safety limits: the drill's maximum length, allowed environment kinds, abort probes."""

    max_duration_s: float = 1800.0
    allowed_kinds: tuple[EnvironmentKind, ...] = ("staging", "test")
    abort_when: tuple[str, ...] = ()
    max_targets_per_fault: int = 10


@dataclass(frozen=True)
class Playbook:
    """A validated drill scenario."""

    id: str
    title: str
    summary: str
    severity: str
    targets: tuple[str, ...]
    probes: tuple[ProbeSpec, ...]
    steady_state: tuple[str, ...]
    faults: tuple[FaultSpec, ...]
    steps: tuple[ResponseStep, ...]
    objectives: Objectives
    scoring: Scoring
    impact: Impact
    safety: Safety
    source: Path | None = None
    # Other languages of the title, summary and step titles (see engine.model.text).
    translations: Translations = field(default_factory=dict)
    exercise: Exercise = field(default_factory=Exercise)  # alert, injects, players' view, decisions

    def probe(self, probe_id: str) -> ProbeSpec:
        """The probe called ``probe_id`` (validated to exist)."""
        return next(p for p in self.probes if p.id == probe_id)

    def step(self, key: str) -> ResponseStep:
        """The step whose key (``party.id``) is ``key``."""
        return next(s for s in self.steps if s.key == key)

    def scaled(self, factor: float) -> Playbook:
        """The same scenario with every scenario duration multiplied by ``factor`` (CI mode).

        Probe intervals and timeouts are not scaled: they are the measuring instrument.
        """
        if factor == 1.0:
            return self
        faults = tuple(
            replace(
                f,
                at_s=f.at_s * factor,
                duration_s=None if f.duration_s is None else f.duration_s * factor,
            )
            for f in self.faults
        )
        steps = tuple(replace(s, within_s=s.within_s * factor) for s in self.steps)
        objectives = replace(
            self.objectives,
            rto_s=None if self.objectives.rto_s is None else self.objectives.rto_s * factor,
            rpo_s=None if self.objectives.rpo_s is None else self.objectives.rpo_s * factor,
        )
        safety = replace(self.safety, max_duration_s=self.safety.max_duration_s * factor)
        exercise = self.exercise.scaled(factor)
        return replace(
            self, faults=faults, steps=steps, objectives=objectives, safety=safety, exercise=exercise
        )


# ---------------------------------------------------------------- environment


@dataclass(frozen=True)
class SecretRef:
    """A secret by reference (``env:VAR`` or ``file:PATH``); its value is read only when used."""

    ref: str

    def __repr__(self) -> str:
        return f"SecretRef({self.ref!r})"


@dataclass(frozen=True)
class DockerEndpoint:
    """How to reach the Docker Engine of the staging systems."""

    url: str = "unix:///var/run/docker.sock"
    tls_verify: bool = False
    ca_cert: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SshHost:
    """An SSH-reachable host with a pinned host key or known_hosts file."""

    name: str
    address: str
    port: int
    user: str
    key: SecretRef | None
    use_agent: bool
    host_key: str | None
    known_hosts: str | None
    sudo: bool
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 30.0
    services: Mapping[str, Any] = field(default_factory=frozen_mapping)


@dataclass(frozen=True)
class TargetBinding:
    """What a playbook's logical target is in this environment: containers or hosts."""

    name: str
    kind: Literal["container", "host"]
    refs: tuple[str, ...]  # container names, or SSH host names


@dataclass(frozen=True)
class Participant:
    """A person who takes part in drills for one party."""

    name: str
    party: Party
    role: str = ""
    contact: str = ""
    language: str = "en"  # en or zh-CN: the desk page and injects this person gets
    notify: str = ""  # an apprise URL (or env:VAR holding one): the sponsor gets each drill's head hash


@dataclass(frozen=True)
class Environment:
    """A validated environment: where the staging systems are and who responds."""

    name: str
    kind: EnvironmentKind
    client: str
    docker: DockerEndpoint | None
    hosts: Mapping[str, SshHost]
    targets: Mapping[str, TargetBinding]
    participants: tuple[Participant, ...]
    urls: Mapping[str, str]
    allow_production: bool = False
    source: Path | None = None
