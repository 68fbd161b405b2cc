"""Load and validate playbooks and environment files into the frozen models.

Validation happens once, here, at the boundary: the strict YAML reader (:mod:`engine.spec.yamlsafe`),
then the packaged JSON Schema (draft-07, every error via ``iter_errors``:
:mod:`engine.spec.messages`), then semantic checks (references, plugins and their parameter
schemas, durations, cycles: :mod:`engine.spec.checks`). *All* problems are reported together, each
located as ``file:line:column: field.path: message``. Only a valid document is turned into
:class:`~engine.model.types.Playbook` / :class:`~engine.model.types.Environment` (:mod:`engine.spec.build`).

``validate_file`` detects the format from the ``format`` field through a small table that
other modules extend with :func:`register_format` or, without being imported by the engine,
through the ``bcdrill.formats`` entry-point group (name: the format, value: the validator).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from engine.errors import (
    EnvironmentFileError,
    InputError,
    PlaybookError,
    Problem,
    UnknownPluginError,
)
from engine.model.types import Environment, Playbook
from engine.registry import Registry, check_callable
from engine.spec.build import build_environment, build_playbook
from engine.spec.checks import check_against_environment, environment_semantics, playbook_semantics
from engine.spec.messages import load_schema, schema_problems, sort_problems, unique_problems
from engine.spec.translations import (
    TRANSLATIONS_FORMAT,
    validate_translations_document,
    with_translations_file,
)
from engine.spec.yamlsafe import YamlDocument, load_yaml

__all__ = [
    "ENVIRONMENT_FORMAT",
    "FORMATS",
    "FORMATS_GROUP",
    "FORMAT_NAME",
    "PLAYBOOK_FORMAT",
    "FormatValidator",
    "binding_problems",
    "check_against_environment",
    "load_environment",
    "load_playbook",
    "load_schema",
    "register_format",
    "schema_problems",
    "validate_environment_document",
    "validate_file",
    "validate_playbook_document",
]

PLAYBOOK_FORMAT = "playbook/v1"
ENVIRONMENT_FORMAT = "environment/v1"

FormatValidator = Callable[[YamlDocument], tuple[Problem, ...]]
"""Checks one loaded document of a format and returns every problem (empty when valid)."""

FORMATS_GROUP = "bcdrill.formats"  # entry points: "<format>" = "module:validator"
FORMAT_NAME = re.compile(r"^[a-z][a-z0-9-]*/v[0-9]+$")
FORMATS: Registry[FormatValidator] = Registry(
    "file format", FORMATS_GROUP, check_callable("file format"), FORMAT_NAME
)
"""Validators by the ``format`` a file declares; other packages add theirs (``drill-plan/v1``)."""


# ---------------------------------------------------------------- public API


def register_format(name: str, validator: FormatValidator) -> None:
    """Let ``validate_file`` check files whose ``format`` is ``name`` (e.g. ``drill-plan/v1``)."""
    FORMATS.register(name, validator)


def load_playbook(path: Path) -> Playbook:
    """Load and fully validate a playbook; raise :class:`PlaybookError` listing every problem."""
    doc = _load(path, PlaybookError)
    problems = _other_format(doc, PLAYBOOK_FORMAT) or validate_playbook_document(doc)
    if problems:
        raise PlaybookError(f"{path}: {len(problems)} problem(s)", problems)
    return with_translations_file(build_playbook(doc.data, path))


def load_environment(path: Path) -> Environment:
    """Load and fully validate an environment file; raise :class:`EnvironmentFileError`."""
    doc = _load(path, EnvironmentFileError)
    problems = _other_format(doc, ENVIRONMENT_FORMAT) or validate_environment_document(doc)
    if problems:
        raise EnvironmentFileError(f"{path}: {len(problems)} problem(s)", problems)
    return build_environment(doc.data, path)


def validate_file(path: Path) -> tuple[str, tuple[Problem, ...]]:
    """Detect the file's format and return it with every problem (none when the file is valid).

    The format is ``""`` when the file cannot be read or has no usable ``format`` field.
    """
    try:
        doc = load_yaml(path)
    except InputError as exc:
        return "", exc.problems
    fmt = doc.data.get("format")
    if not isinstance(fmt, str):
        message = f"missing 'format' field: say which kind of file this is ({_known_formats()})"
        return "", (doc.problem(("format",), message),)
    validator = _format_validator(fmt)
    if validator is not None:
        return fmt, validator(doc)
    message = f"unknown format {fmt!r} (this bcdrill reads: {_known_formats()})"
    return fmt, (doc.problem(("format",), message),)


def binding_problems(playbook: Path, environment: Path) -> tuple[Problem, ...]:
    """Every problem of ``playbook`` run in ``environment``: each file's own, then whether the
    playbook's references resolve there (offline). Problems are located in their files."""
    try:
        pb, env = load_playbook(playbook), load_environment(environment)
    except InputError as exc:
        return exc.problems or (Problem(str(playbook), 0, 0, "", str(exc)),)
    return check_against_environment(pb, env)


def validate_playbook_document(doc: YamlDocument) -> tuple[Problem, ...]:
    """Schema and semantic problems of a loaded playbook document."""
    problems = schema_problems(doc, load_schema("playbook"))
    problems += sort_problems(playbook_semantics(doc))
    return tuple(unique_problems(problems))


def validate_environment_document(doc: YamlDocument) -> tuple[Problem, ...]:
    """Schema and semantic problems of a loaded environment document."""
    problems = schema_problems(doc, load_schema("environment"))
    problems += sort_problems(environment_semantics(doc))
    return tuple(unique_problems(problems))


def _load(path: Path, error: type[InputError]) -> YamlDocument:
    try:
        return load_yaml(path)
    except InputError as exc:
        raise error(str(exc), exc.problems) from exc


def _format_validator(fmt: str) -> FormatValidator | None:
    """The validator of ``fmt``; only its own plugin is loaded (a playbook needs no drill plans)."""
    if not FORMAT_NAME.match(fmt):
        return None
    try:
        return FORMATS.get(fmt)
    except UnknownPluginError:
        return None


def _known_formats() -> str:
    return ", ".join(FORMATS.names())


def _other_format(doc: YamlDocument, expected: str) -> tuple[Problem, ...]:
    """One clear problem when the file is another known kind (e.g. an environment file)."""
    fmt = doc.data.get("format")
    if fmt == expected or not isinstance(fmt, str) or _format_validator(fmt) is None:
        return ()
    return (doc.problem(("format",), f"this file is {fmt!r}, not {expected!r}"),)


register_format(PLAYBOOK_FORMAT, validate_playbook_document)
register_format(ENVIRONMENT_FORMAT, validate_environment_document)
register_format(TRANSLATIONS_FORMAT, validate_translations_document)
