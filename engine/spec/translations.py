"""Playbook translations files: ``<playbook>.translations.yaml`` beside a playbook.

::

    format: playbook-translations/v1
    playbook: storefront-down
    languages:
      zh-CN:
        title: 网店网页服务器在营业时间停止
        steps:
          msp.acknowledge: 值班工程师确认告警

Validated like every input (strict YAML, draft-07 schema, every problem located) and merged
over the texts given inline in the playbook; a step key the playbook does not have is an
error naming the file, line and key.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.errors import InputError, PlaybookError, Problem
from engine.model.text import (
    SOURCE_LANGUAGE,
    Translations,
    merge_translations,
    missing_translations,
    name_text_id,
    step_text_id,
)
from engine.model.types import Playbook
from engine.spec.messages import load_schema, schema_problems
from engine.spec.yamlsafe import YamlDocument, load_yaml

__all__ = [
    "TRANSLATIONS_FORMAT",
    "playbook_text_ids",
    "translations_path",
    "untranslated",
    "untranslated_problems",
    "validate_translations_document",
    "with_translations_file",
]

TRANSLATIONS_FORMAT = "playbook-translations/v1"
SUFFIX = ".translations.yaml"


def translations_path(playbook: Path) -> Path:
    """Where a playbook's translations file sits: ``storefront-down.translations.yaml``."""
    return playbook.with_name(playbook.name.removesuffix(".yaml").removesuffix(".yml") + SUFFIX)


def playbook_text_ids(playbook: Playbook) -> list[str]:
    """Every translatable text of ``playbook``: title, summary (when given), step titles."""
    ids = ["title", *(["summary"] if playbook.summary else [])]
    names = dict.fromkeys([*playbook.targets, *(p.id for p in playbook.probes)])
    return ids + [step_text_id(s.key) for s in playbook.steps] + [name_text_id(n) for n in names]


def untranslated(playbook: Playbook, lang: str) -> list[str]:
    """The texts of ``playbook`` that have no ``lang`` version (none for the source language)."""
    return missing_translations(playbook_text_ids(playbook), playbook.translations, lang)


def untranslated_problems(playbook: Playbook, lang: str) -> tuple[Problem, ...]:
    """One located problem per text of ``playbook`` that has no ``lang`` version."""
    missing = set(untranslated(playbook, lang))
    if not missing or playbook.source is None:
        return ()
    doc = load_yaml(playbook.source)
    where = translations_path(playbook.source).name
    message = f"no {lang} text: give {{en: …, {lang}: …}} here or add it to {where}"
    places: list[tuple[str, tuple[str | int, ...]]] = [("title", ("title",)), ("summary", ("summary",))]
    for index, target in enumerate(doc.data.get("targets", [])):
        places.append((name_text_id(target), ("targets", index)))
    for index, probe in enumerate(doc.data.get("probes", [])):
        places.append((name_text_id(probe["id"]), ("probes", index, "id")))
    for party, steps in doc.data.get("response", {}).items():
        for index, step in enumerate(steps):
            places.append((step_text_id(f"{party}.{step['id']}"), ("response", party, index, "title")))
    problems, seen = [], set()
    for text_id, path in places:
        if text_id in missing and text_id not in seen:
            seen.add(text_id)
            problems.append(doc.problem(path, message))
    return tuple(problems)


def validate_translations_document(doc: YamlDocument) -> tuple[Problem, ...]:
    """Schema problems of a loaded translations document."""
    return tuple(schema_problems(doc, load_schema("translations")))


def _flatten(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for lang, texts in data["languages"].items():
        flat = {k: v for k, v in texts.items() if k in ("title", "summary")}
        flat.update({step_text_id(key): title for key, title in texts.get("steps", {}).items()})
        flat.update({name_text_id(name): text for name, text in texts.get("names", {}).items()})
        result[lang] = flat
    return result


def _unknown_steps(doc: YamlDocument, playbook: Playbook) -> list[Problem]:
    known = {s.key for s in playbook.steps}
    problems = []
    if doc.data["playbook"] != playbook.id:
        message = f"translates playbook {doc.data['playbook']!r}, not {playbook.id!r}"
        problems.append(doc.problem(("playbook",), message))
    for lang, texts in doc.data["languages"].items():
        if lang == SOURCE_LANGUAGE:
            problems.append(doc.problem(("languages", lang), "the playbook itself is the English text"))
        for key in texts.get("steps", {}):
            if key not in known:
                message = f"the playbook has no step {key!r} (steps: {', '.join(sorted(known))})"
                problems.append(doc.problem(("languages", lang, "steps", key), message))
    return problems


def with_translations_file(playbook: Playbook, path: Path | None = None) -> Playbook:
    """``playbook`` with the texts of its translations file merged in, and its step titles per
    language handed to the desk (``exercise.step_titles``): one source for every reader.

    Raises :class:`PlaybookError` listing every problem of the file.
    """
    merged = _merged(playbook, path)
    titles: dict[str, dict[str, str]] = {}
    for step in merged.steps:
        for lang, texts in merged.translations.items():
            if step_text_id(step.key) in texts:
                titles.setdefault(step.key, {})[lang] = texts[step_text_id(step.key)]
    return replace(merged, exercise=replace(merged.exercise, step_titles=titles))


def _merged(playbook: Playbook, path: Path | None) -> Playbook:
    if path is None:
        if playbook.source is None:
            return playbook
        path = translations_path(playbook.source)
    if not path.exists():
        return playbook
    try:
        doc = load_yaml(path)
    except InputError as exc:
        raise PlaybookError(str(exc), exc.problems) from exc
    problems = validate_translations_document(doc) or tuple(_unknown_steps(doc, playbook))
    if problems:
        raise PlaybookError(f"{path}: {len(problems)} problem(s)", problems)
    merged: Translations = merge_translations(playbook.translations, _flatten(doc.data))
    return replace(playbook, translations=merged)
