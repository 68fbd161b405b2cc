"""The human side of a playbook: the kick-off alert, injects (the MSEL), players' view, decisions.

Frozen, typed, built only by :mod:`engine.spec.build_exercise`. Every message a drill sends
starts and ends with the exercise mark in the reader's language, so nobody mistakes it for
a real incident (:func:`marked`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

Language = Literal["en", "zh-CN"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-CN")
EXERCISE_MARK: Mapping[str, str] = MappingProxyType(
    {"en": "EXERCISE EXERCISE EXERCISE", "zh-CN": "演练 演练 演练"}
)
ChannelKind = Literal["alertmanager", "pagerduty", "apprise"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("alertmanager", "pagerduty", "apprise")
PlayersMode = Literal["blind", "checklist"]


def marked(text: str, language: str) -> str:
    """``text`` between two exercise marks in ``language`` (English when unknown)."""
    mark = EXERCISE_MARK.get(language, EXERCISE_MARK["en"])
    return f"{mark} — {text.strip()} — {mark}"


@dataclass(frozen=True)
class Channel:
    """An outside channel a message is delivered through; its URL is a secret by reference."""

    kind: ChannelKind
    url: str  # a secret reference: env:VAR or file:PATH (URLs of alert paths carry tokens)
    routing_key: str | None = None  # PagerDuty Events v2 integration key, also a reference


@dataclass(frozen=True)
class Condition:
    """When a conditional inject fires: a step ``done`` or ``late``, or a probe ``up``/``down``."""

    state: Literal["done", "late", "up", "down"]
    step: str | None = None  # a step key, e.g. msp.inform-client
    probe: str | None = None

    def describe(self) -> str:
        """``msp.inform-client late`` / ``probe storefront down``."""
        return f"{self.step} {self.state}" if self.step else f"probe {self.probe} {self.state}"


@dataclass(frozen=True)
class Reaction:
    """The step players are expected to take after an inject, within ``within_s`` of receiving it."""

    step: str
    within_s: float


@dataclass(frozen=True)
class Inject:
    """One scripted message (MSEL row): who gets what, how, and when.

    ``to`` names a party (``msp``/``client``), a role or a participant; ``at_s`` is an offset
    from impact start, or ``when`` a condition; with neither, it goes out at impact.
    """

    id: str
    to: tuple[str, ...]
    text: Mapping[str, str]  # language → text (without the exercise mark)
    sender: str = ""
    sender_text: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # per language
    via: tuple[Channel, ...] = ()
    at_s: float | None = None
    when: Condition | None = None
    expect: Reaction | None = None
    kind: Literal["alert", "inject"] = "inject"
    severity: str = "critical"

    def text_in(self, language: str) -> str:
        """The text marked as an exercise, in ``language`` (falls back to English, then any)."""
        text = self.text.get(language) or self.text.get("en") or next(iter(self.text.values()), "")
        return marked(text, language if language in self.text else "en")

    def sender_in(self, language: str) -> str:
        """Who the message is from, in ``language`` when the playbook gives it."""
        return self.sender_text.get(language) or self.sender

    def messages(self) -> dict[str, str]:
        """Marked text in every language the playbook gives."""
        return {lang: marked(text, lang) for lang, text in self.text.items()}


@dataclass(frozen=True)
class Decision:
    """A decision point: the options offered and the one(s) the plan expects."""

    options: tuple[str, ...]
    expected: tuple[str, ...]
    question: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Cadence:
    """A step repeated as status updates at least every ``every_s`` until step ``until``."""

    every_s: float
    until: str


@dataclass(frozen=True)
class MailRule:
    """An e-mail to the drill mailbox that carries the drill's code records ``step``.

    ``sender`` limits who may send it (parties, roles or names of participants, matched by
    their contact address); ``subject`` is a word the subject must contain (case-insensitive).
    """

    step: str
    sender: tuple[str, ...] = ()
    subject: str = ""


@dataclass(frozen=True)
class Hotwash:
    """The survey after ENDEX: the desk stays open ``window_s`` for participants' answers."""

    window_s: float


@dataclass(frozen=True)
class Exercise:
    """Everything a playbook says about the people side of the drill."""

    alert: Inject | None = None
    injects: tuple[Inject, ...] = ()
    players: PlayersMode = "blind"
    decisions: Mapping[str, Decision] = field(default_factory=lambda: MappingProxyType({}))  # by step key
    mailbox: tuple[MailRule, ...] = ()  # e-mails that record communication steps
    cadences: Mapping[str, Cadence] = field(default_factory=lambda: MappingProxyType({}))  # by step key
    hotwash: Hotwash | None = None  # the participants' survey after ENDEX; None: no hotwash
    # step key → its title per language, for desk pages: filled from the playbook's translations
    # (inline ``title: {en: …, zh-CN: …}`` or its translations file) when the playbook is loaded
    step_titles: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def title_in(self, key: str, title: str, language: str) -> str:
        """The title of step ``key`` in ``language`` when the playbook gives one, else ``title``."""
        return self.step_titles.get(key, {}).get(language) or title

    @property
    def scripted(self) -> tuple[Inject, ...]:
        """The alert (if any) then the injects, in playbook order."""
        return ((self.alert,) if self.alert else ()) + self.injects

    def scaled(self, factor: float) -> Exercise:
        """Offsets and reaction targets multiplied by ``factor`` (CI mode)."""

        def scale(inject: Inject) -> Inject:
            expect = inject.expect and replace(inject.expect, within_s=inject.expect.within_s * factor)
            at_s = None if inject.at_s is None else inject.at_s * factor
            return replace(inject, at_s=at_s, expect=expect)

        return replace(
            self,
            alert=self.alert and scale(self.alert),
            injects=tuple(scale(i) for i in self.injects),
            cadences={k: replace(c, every_s=c.every_s * factor) for k, c in self.cadences.items()},
            hotwash=self.hotwash and Hotwash(self.hotwash.window_s * factor),
        )


__all__ = [
    "CHANNEL_KINDS",
    "EXERCISE_MARK",
    "LANGUAGES",
    "Cadence",
    "Channel",
    "ChannelKind",
    "Condition",
    "Decision",
    "Exercise",
    "Hotwash",
    "Inject",
    "Language",
    "MailRule",
    "PlayersMode",
    "Reaction",
    "marked",
]
