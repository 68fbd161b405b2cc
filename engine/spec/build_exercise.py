"""Build and check the people side of a playbook: ``alert``, ``injects``, ``players``, decisions.

:func:`exercise_semantics` yields the problems the schema cannot see (unknown steps or probes,
duplicate inject ids, an inject with both ``at`` and ``when``, a decision's expected option
that is not offered); :func:`build_exercise` turns a valid document into an
:class:`~engine.model.exercise.Exercise`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from engine.errors import Problem
from engine.model.durations import parse_duration
from engine.model.exercise import (
    Cadence,
    Channel,
    ChannelKind,
    Condition,
    Decision,
    Exercise,
    Hotwash,
    Inject,
    MailRule,
    PlayersMode,
    Reaction,
)
from engine.model.types import PARTIES
from engine.spec.yamlsafe import YamlDocument

__all__ = ["build_exercise", "exercise_semantics"]


def _recipients(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def _channel(data: dict[str, Any]) -> Channel:
    return Channel(kind=cast(ChannelKind, data["kind"]), url=data["url"], routing_key=data.get("routing_key"))


def _condition(data: dict[str, Any] | None) -> Condition | None:
    if data is None:
        return None
    return Condition(state=data["state"], step=data.get("step"), probe=data.get("probe"))


def _inject(data: dict[str, Any], kind: str, default_id: str = "") -> Inject:
    expect = data.get("expect")
    sender = data.get("from", "")
    sender_text = dict(sender) if isinstance(sender, dict) else {}
    if sender_text:
        sender = sender_text.get("en") or next(iter(sender_text.values()), "")
    return Inject(
        id=data.get("id", default_id),
        to=_recipients(data.get("to", "msp")),
        text=dict(data["text"]),
        sender=str(sender_text.get("en") or next(iter(sender_text.values()), ""))
        if sender_text
        else str(sender),
        sender_text=sender_text,
        via=tuple(_channel(c) for c in data.get("via", [])),
        at_s=None if data.get("at") is None else parse_duration(data["at"]),
        when=_condition(data.get("when")),
        expect=None if expect is None else Reaction(expect["step"], parse_duration(expect["within"])),
        kind="alert" if kind == "alert" else "inject",
        severity=str(data.get("severity", "critical")),
    )


def build_exercise(data: dict[str, Any]) -> Exercise:
    """The :class:`Exercise` of a valid playbook document (empty when it has none)."""
    alert = data.get("alert")
    decisions = {}
    cadences = {}
    response = data.get("response", {})
    for party in PARTIES:
        for step in response.get(party, []):
            if "cadence" in step:
                cadence = step["cadence"]
                cadences[f"{party}.{step['id']}"] = Cadence(
                    parse_duration(cadence["every"]), cadence["until"]
                )
            if step.get("record") == "decision":
                decisions[f"{party}.{step['id']}"] = Decision(
                    options=tuple(step["options"]),
                    expected=tuple(step.get("expected", step["options"])),
                    question=dict(step.get("question", {})),
                )
    return Exercise(
        alert=None if alert is None else _inject(alert, "alert", "alert"),
        injects=tuple(_inject(i, "inject") for i in data.get("injects", [])),
        players=cast(PlayersMode, data.get("players", "blind")),
        decisions=decisions,
        cadences=cadences,
        hotwash=Hotwash(parse_duration(data["hotwash"]["window"])) if "hotwash" in data else None,
        mailbox=tuple(
            MailRule(step=m["step"], sender=_recipients(m.get("from")), subject=str(m.get("subject", "")))
            for m in data.get("mailbox", [])
        ),
    )


# ---------------------------------------------------------------- semantic checks


def _dicts(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, dict):
            yield i, item


def exercise_semantics(doc: YamlDocument) -> Iterator[Problem]:
    """Every problem of the ``alert``, ``injects`` and decision steps the schema cannot see."""
    data = doc.data
    response: dict[str, Any] = data["response"] if isinstance(data.get("response"), dict) else {}
    steps = {f"{p}.{s.get('id')}" for p in PARTIES for _, s in _dicts(response.get(p))}
    probes = {str(p.get("id")) for _, p in _dicts(data.get("probes"))}
    seen: set[str] = set()
    for i, inject in _dicts(data.get("injects")):
        path = ("injects", i)
        if str(inject.get("id")) in seen:
            yield doc.problem((*path, "id"), f"inject id {inject.get('id')!r} is used twice")
        seen.add(str(inject.get("id")))
        if "at" in inject and "when" in inject:
            yield doc.problem(path, "give either 'at' (an offset) or 'when' (a condition), not both")
        yield from _references(doc, inject, path, steps, probes)
    alert = data.get("alert")
    if isinstance(alert, dict):
        yield from _references(doc, alert, ("alert",), steps, probes)
    for party in PARTIES:
        for i, step in _dicts(response.get(party)):
            yield from _decision_problems(doc, step, ("response", party, i))
            cadence = step.get("cadence")
            until = cadence.get("until") if isinstance(cadence, dict) else None
            if isinstance(until, str) and until not in steps:
                yield doc.problem(("response", party, i, "cadence", "until"), f"unknown step {until!r}")
    for i, rule in _dicts(data.get("mailbox")):
        if isinstance(rule.get("step"), str) and rule["step"] not in steps:
            yield doc.problem(("mailbox", i, "step"), f"unknown step {rule['step']!r}")


def _references(
    doc: YamlDocument, inject: dict[str, Any], path: tuple[Any, ...], steps: set[str], probes: set[str]
) -> Iterator[Problem]:
    when = inject.get("when")
    if isinstance(when, dict) and isinstance(when.get("step"), str) and when["step"] not in steps:
        yield doc.problem((*path, "when", "step"), f"unknown step {when['step']!r}")
    if isinstance(when, dict) and isinstance(when.get("probe"), str) and when["probe"] not in probes:
        yield doc.problem((*path, "when", "probe"), f"unknown probe {when['probe']!r}")
    expect = inject.get("expect")
    if isinstance(expect, dict) and isinstance(expect.get("step"), str) and expect["step"] not in steps:
        yield doc.problem((*path, "expect", "step"), f"unknown step {expect.get('step')!r}")


def _decision_problems(doc: YamlDocument, step: dict[str, Any], path: tuple[Any, ...]) -> Iterator[Problem]:
    is_decision = step.get("record") == "decision"
    options: Any = step.get("options")
    if is_decision and not isinstance(options, list):
        yield doc.problem((*path, "options"), "a decision step needs 'options' (at least two)")
        return
    if not is_decision:
        for key in ("options", "expected", "question"):
            if key in step:
                yield doc.problem((*path, key), f"'{key}' is only for steps recorded by 'decision'")
        return
    expected = step.get("expected")
    for j, option in enumerate(expected if isinstance(expected, list) else []):
        if isinstance(option, str) and option not in options:
            yield doc.problem((*path, "expected", j), f"{option!r} is not one of the options {options}")
