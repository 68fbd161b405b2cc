"""Texts a reader sees in their own language: a playbook's title, summary and step titles.

A playbook is written in English (its source language) and may carry other languages either
inline — ``title: {en: Storefront down, zh-CN: 网店宕机}`` — or in a translations file beside
it (``<playbook>.translations.yaml``, see :mod:`engine.spec.loader`). Both end up as
:data:`Translations`: language → text id → text, where the text ids are ``title``,
``summary``, ``step:<party>.<id>`` and ``name:<target or probe>`` (plain words for a logical
name, used in business sentences: "the web shop's server was stopped"). The run journal
keeps them (``run.started``), so a report in any language is still a pure function of the
journal.

>>> text = LocalText.of({"en": "Storefront down", "zh-CN": "网店宕机"})
>>> text.text, text.get("zh-CN"), text.get("de")
('Storefront down', '网店宕机', None)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "SOURCE_LANGUAGE",
    "LocalText",
    "Translations",
    "merge_translations",
    "missing_translations",
    "name_text_id",
    "step_text_id",
]

SOURCE_LANGUAGE = "en"
Translations = Mapping[str, Mapping[str, str]]  # language -> text id -> text


def name_text_id(name: str) -> str:
    """The text id of a target's or probe's plain name: ``name:storefront``."""
    return f"name:{name}"


def step_text_id(key: str) -> str:
    """The text id of a step's title: ``step:msp.acknowledge``."""
    return f"step:{key}"


@dataclass(frozen=True)
class LocalText:
    """One text in the source language (``text``) and in other languages (``translations``)."""

    text: str
    translations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, value: str | Mapping[str, str]) -> LocalText:
        """A plain string, or a mapping of language → text that includes the source language."""
        if isinstance(value, str):
            return cls(value)
        others = {lang: str(text) for lang, text in value.items() if lang != SOURCE_LANGUAGE}
        return cls(str(value[SOURCE_LANGUAGE]), others)

    def get(self, lang: str) -> str | None:
        """The text in ``lang``; ``None`` when it has not been translated into it."""
        return self.text if lang == SOURCE_LANGUAGE else self.translations.get(lang)


def merge_translations(*layers: Translations) -> dict[str, dict[str, str]]:
    """Later layers win, text by text (a translations file over the inline texts)."""
    merged: dict[str, dict[str, str]] = {}
    for layer in layers:
        for lang, texts in layer.items():
            merged.setdefault(lang, {}).update(texts)
    return merged


def missing_translations(text_ids: Iterable[str], translations: Translations, lang: str) -> list[str]:
    """The text ids (in the given order) that have no text in ``lang``."""
    if lang == SOURCE_LANGUAGE:
        return []
    have = translations.get(lang, {})
    return [text_id for text_id in text_ids if not have.get(text_id)]
