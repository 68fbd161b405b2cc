"""The playbook's own texts in the reader's language: title, step titles, and the findings and
actions that quote a step's title.

The debrief keeps the playbook's English texts and, in ``Debrief.translations``, its other
languages (from the playbook or its translations file, via the run journal). Before any
renderer runs, :func:`for_language` swaps in the reader's language. A text with no
translation falls back *visibly*: the English text, marked as untranslated
(``Acknowledge the alert（未翻译）``), so a mixed-language page never passes for a finished one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TypeVar

from engine.model.text import SOURCE_LANGUAGE, name_text_id, step_text_id
from reports.debrief.model import Debrief, FaultResult, Message
from reports.i18n import translator

__all__ = ["fault_phrase", "for_language", "local_name", "local_text", "with_plain_faults"]

_Item = TypeVar("_Item")


def local_text(debrief: Debrief, text_id: str, english: str, lang: str) -> str:
    """The text ``text_id`` in ``lang``; the English text marked as untranslated when missing."""
    if lang == SOURCE_LANGUAGE or not english:
        return english
    found = debrief.translations.get(lang, {}).get(text_id)
    return found if found else translator(lang)("text.untranslated", text=english)


def local_name(debrief: Debrief, name: str, lang: str) -> str:
    """Plain words for a target or probe (``storefront`` → ``网店``), visibly marked when missing."""
    return local_text(debrief, name_text_id(name), name, lang)


def fault_phrase(debrief: Debrief, fault: FaultResult, lang: str) -> str:
    """What a fault did, in plain words: "storefront's server was stopped" (no engine terms)."""
    t = translator(lang)
    name = fault.target_name or fault.target
    key = f"fault.phrase.{fault.action}"
    return t(key if t.has(key) else "fault.phrase.other", target=local_name(debrief, name, lang))


def with_plain_faults(debrief: Debrief, lang: str) -> Debrief:
    """The client's view of the faults: each named by what it did, not by its engine id,
    action or container (the timeline's rows included)."""
    phrases = {f.id: fault_phrase(debrief, f, lang) for f in debrief.faults}
    return replace(
        debrief,
        faults=tuple(replace(f, id=phrases[f.id], action="", target="") for f in debrief.faults),
        timeline=replace(
            debrief.timeline,
            faults=tuple(replace(w, id=phrases.get(w.id, w.id)) for w in debrief.timeline.faults),
        ),
    )


def _with_title(msg: Message | None, title: str) -> Message | None:
    if msg is None or "title" not in msg.params:
        return msg
    return Message(msg.key, {**msg.params, "title": title})


def _subject_step(subject: str) -> str | None:
    return subject.removeprefix("step:") if subject.startswith("step:") else None


def for_language(debrief: Debrief, lang: str) -> Debrief:
    """``debrief`` with the playbook's texts in ``lang`` (unchanged for English)."""
    if lang == SOURCE_LANGUAGE:
        return debrief
    english = {f"{s.party}.{s.id}": s.title for s in debrief.steps}
    titles = {key: local_text(debrief, step_text_id(key), title, lang) for key, title in english.items()}

    def step_title(party: str, id_: str, fallback: str) -> str:
        return titles.get(f"{party}.{id_}", fallback)

    def retitle(items: tuple[_Item, ...], fields: tuple[str, ...]) -> tuple[_Item, ...]:
        return tuple(_retitle(item, fields, titles) for item in items)

    timeline = debrief.timeline
    probes = tuple(replace(p, probe=local_name(debrief, p.probe, lang)) for p in timeline.probes)
    return replace(
        debrief,
        playbook=replace(debrief.playbook, title=local_text(debrief, "title", debrief.playbook.title, lang)),
        steps=tuple(replace(s, title=step_title(s.party, s.id, s.title)) for s in debrief.steps),
        timeline=replace(
            debrief.timeline,
            steps=tuple(replace(m, title=step_title(m.party, m.id, m.title)) for m in debrief.timeline.steps),
            probes=probes,
        ),
        findings=retitle(debrief.findings, ("title_msg", "evidence_msg")),
        improvements=retitle(debrief.improvements, ("action_msg",)),
        follow_up=retitle(debrief.follow_up, ("action_msg",)),
    )


def _retitle(item: _Item, fields: tuple[str, ...], titles: Mapping[str, str]) -> _Item:
    """``item`` (a finding, improvement or follow-up) with its step's title in its messages."""
    key = _subject_step(str(getattr(item, "subject", "")))
    if key is None or key not in titles:
        return item
    change: Callable[[Message | None], Message | None] = lambda m: _with_title(m, titles[key])  # noqa: E731
    return replace(item, **{name: change(getattr(item, name)) for name in fields})  # type: ignore[type-var]
