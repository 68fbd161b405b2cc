"""Build the frozen models from a validated playbook or environment document.

Only documents that passed the schema and the semantic checks reach here, so the builders
index fields directly, fill in defaults and parse durations to seconds; nothing here reports
problems. The result is a :class:`~engine.model.types.Playbook` or
:class:`~engine.model.types.Environment`: no ``dict[str, Any]`` goes further.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, cast

from engine.model.durations import parse_duration
from engine.model.text import LocalText, Translations, step_text_id
from engine.model.types import (
    PARTIES,
    DockerEndpoint,
    Environment,
    FaultSpec,
    Impact,
    Objectives,
    Participant,
    Playbook,
    ProbeSpec,
    Recording,
    ResponseStep,
    RunbookAction,
    Safety,
    Scoring,
    SecretRef,
    SshHost,
    TargetBinding,
    frozen_mapping,
)
from engine.spec.build_exercise import build_exercise

__all__ = ["DEFAULT_PROBE_INTERVAL_S", "DEFAULT_PROBE_TIMEOUT_S", "build_environment", "build_playbook"]

#: Probe defaults fine enough that every derived time is within 50 ms of the truth without
#: tuning (a transition is stamped at the start of the check that saw it, see observe.py).
DEFAULT_PROBE_INTERVAL_S = 0.1
DEFAULT_PROBE_TIMEOUT_S = 0.5


def _seconds(value: Any, default: float) -> float:
    return default if value is None else parse_duration(value)


def _optional_seconds(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def build_playbook(data: dict[str, Any], source: Path) -> Playbook:
    """The :class:`Playbook` of a valid playbook document read from ``source``."""
    probes = tuple(
        ProbeSpec(
            id=p["id"],
            kind=p["kind"],
            target=p.get("target"),
            interval_s=_seconds(p.get("interval"), DEFAULT_PROBE_INTERVAL_S),
            timeout_s=_seconds(p.get("timeout"), DEFAULT_PROBE_TIMEOUT_S),
            params=frozen_mapping(p.get("params")),
        )
        for p in data.get("probes", [])
    )
    faults = tuple(
        FaultSpec(
            id=f["id"],
            action=f["action"],
            target=f["target"],
            at_s=_seconds(f.get("at"), 0.0),
            duration_s=_optional_seconds(f.get("duration")),
            until=f.get("until"),
            params=frozen_mapping(f.get("params")),
            select_count=f.get("select", {}).get("count"),
            select_percent=f.get("select", {}).get("percent"),
            restore=f.get("restore"),
        )
        for f in data["faults"]
    )
    title, summary = LocalText.of(data["title"]), LocalText.of(data.get("summary", ""))
    return Playbook(
        id=data["id"],
        title=title.text,
        summary=summary.text,
        severity=data["severity"],
        targets=tuple(data["targets"]),
        probes=probes,
        steady_state=tuple(data.get("steady_state", [])),
        faults=faults,
        steps=tuple(_build_steps(data["response"])),
        objectives=_build_objectives(data.get("objectives", {})),
        scoring=_build_scoring(data.get("scoring", {})),
        impact=_build_impact(data.get("impact", {})),
        safety=_build_safety(data.get("safety", {})),
        source=source,
        translations=_inline_translations(title, summary, data["response"]),
        exercise=build_exercise(data),
    )


def _inline_translations(title: LocalText, summary: LocalText, response: dict[str, Any]) -> Translations:
    """The other languages given inline: ``title: {en: …, zh-CN: …}`` and the like."""
    texts: list[tuple[str, LocalText]] = [("title", title), ("summary", summary)]
    for party in PARTIES:
        for step in response.get(party, []):
            texts.append((step_text_id(f"{party}.{step['id']}"), LocalText.of(step["title"])))
    result: dict[str, dict[str, str]] = {}
    for text_id, text in texts:
        for lang, value in text.translations.items():
            result.setdefault(lang, {})[text_id] = value
    return result


def _build_steps(response: dict[str, Any]) -> Iterator[ResponseStep]:
    for party in PARTIES:
        for step in response.get(party, []):
            record = step["record"]
            recording = (
                Recording(kind=cast(Literal["ack", "webhook", "decision"], record))
                if isinstance(record, str)
                else Recording(kind="probe", probe=record["probe"], state=record["state"])
            )
            after = step.get("after")
            yield ResponseStep(
                party=party,
                id=step["id"],
                title=LocalText.of(step["title"]).text,
                within_s=parse_duration(step["within"]),
                after=None if after is None else (after if "." in after else f"{party}.{after}"),
                recorded_by=recording,
                weight=float(step.get("weight", 1.0)),
                runbook=_build_runbook(step.get("runbook")),
            )


def _build_runbook(data: dict[str, Any] | None) -> RunbookAction | None:
    """The step's runbook automation (validated: exactly one of docker/command/http)."""
    if not data:
        return None
    kind = next(k for k in ("docker", "command", "http") if k in data)
    return RunbookAction(
        kind=cast(Literal["docker", "command", "http"], kind),
        verb=str(data[kind]),
        target=data.get("target"),
        url=data.get("url"),
        expect_status=data.get("expect_status"),
        timeout_s=_seconds(data.get("timeout"), 30.0),
    )


def _build_objectives(data: dict[str, Any]) -> Objectives:
    return Objectives(
        rto_s=_optional_seconds(data.get("rto")),
        rpo_s=_optional_seconds(data.get("rpo")),
        rpo_probe=data.get("rpo_probe"),
    )


def _build_scoring(data: dict[str, Any]) -> Scoring:
    default = Scoring()
    weights = data.get("weights")
    bands = data.get("bands")
    return Scoring(
        weights=frozen_mapping({k: float(v) for k, v in weights.items()}) if weights else default.weights,
        late_limit=float(data.get("late_limit", default.late_limit)),
        bands=frozen_mapping({k: float(v) for k, v in bands.items()}) if bands else default.bands,
        pass_score=float(data.get("pass_score", default.pass_score)),
    )


def _build_impact(data: dict[str, Any]) -> Impact:
    default = Impact()
    return Impact(
        users_affected=int(data.get("users_affected", default.users_affected)),
        hourly_cost=float(data.get("hourly_cost", default.hourly_cost)),
        currency=data.get("currency", default.currency),
    )


def _build_safety(data: dict[str, Any]) -> Safety:
    default = Safety()
    return Safety(
        max_duration_s=_seconds(data.get("max_duration"), default.max_duration_s),
        allowed_kinds=tuple(data.get("allowed_environments", default.allowed_kinds)),
        abort_when=tuple(data.get("abort_when", ())),
        max_targets_per_fault=int(data.get("max_targets_per_fault", default.max_targets_per_fault)),
    )


def build_environment(data: dict[str, Any], source: Path) -> Environment:
    """The :class:`Environment` of a valid environment document read from ``source``."""
    targets = {
        name: TargetBinding(
            name=name,
            kind="container" if "containers" in binding else "host",
            refs=tuple(binding.get("containers") or binding["hosts"]),
        )
        for name, binding in data["targets"].items()
    }
    uses_docker = any(t.kind == "container" for t in targets.values())
    return Environment(
        name=data["name"],
        kind=data["kind"],
        client=data["client"],
        docker=_build_docker(data.get("docker"), uses_docker),
        hosts=frozen_mapping({name: _build_host(name, h) for name, h in data.get("ssh_hosts", {}).items()}),
        targets=frozen_mapping(targets),
        participants=tuple(Participant(**p) for p in data.get("participants", [])),
        urls=frozen_mapping(data.get("urls", {})),
        allow_production=bool(data.get("allow_production", False)),
        source=source,
    )


def _build_docker(data: dict[str, Any] | None, uses_docker: bool) -> DockerEndpoint | None:
    """The Docker endpoint; the local socket when containers are targeted and none is given."""
    if data is None:
        return DockerEndpoint() if uses_docker else None
    default = DockerEndpoint()
    return DockerEndpoint(
        url=data.get("url", default.url),
        tls_verify=bool(data.get("tls_verify", default.tls_verify)),
        ca_cert=data.get("ca_cert"),
        timeout_s=_seconds(data.get("timeout"), default.timeout_s),
    )


def _build_host(name: str, data: dict[str, Any]) -> SshHost:
    key = data.get("key")
    return SshHost(
        name=name,
        address=data["address"],
        port=int(data.get("port", 22)),
        user=data["user"],
        key=SecretRef(key) if key else None,
        use_agent=bool(data.get("agent", False)),
        host_key=data.get("host_key"),
        known_hosts=data.get("known_hosts"),
        sudo=bool(data.get("sudo", False)),
        connect_timeout_s=_seconds(data.get("connect_timeout"), 5.0),
        command_timeout_s=_seconds(data.get("command_timeout"), 30.0),
        services=frozen_mapping(data.get("services")),
    )
