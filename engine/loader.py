"""Load and validate playbooks and environment files into the frozen models.

Validation happens once, here, at the boundary: the strict YAML reader (:mod:`engine.yamlsafe`),
then the packaged JSON Schema (draft-07, every error via ``iter_errors``), then semantic
checks (references, plugins and their parameter schemas, durations, cycles). *All* problems
are reported together, each located as ``file:line:column: field.path: message``. Only a
valid document is turned into :class:`~engine.models.Playbook` /
:class:`~engine.models.Environment`.

``validate_file`` detects the format from the ``format`` field through a small table that
other modules extend with :func:`register_format` or, without being imported by the engine,
through the ``bcdrill.formats`` entry-point group (name: the format, value: the validator).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, cast

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from engine.durations import DURATION_PATTERN, parse_duration
from engine.errors import (
    EnvironmentFileError,
    InputError,
    PlaybookError,
    Problem,
    RegistrationError,
    UnknownPluginError,
)
from engine.models import (
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
    Safety,
    Scoring,
    SecretRef,
    SshHost,
    TargetBinding,
    frozen_mapping,
)
from engine.plugins import FAULTS, PROBES
from engine.yamlsafe import JsonPath, YamlDocument, field_name, load_yaml

__all__ = [
    "ENVIRONMENT_FORMAT",
    "FORMATS_GROUP",
    "PLAYBOOK_FORMAT",
    "FormatValidator",
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
MAX_DURATION_S = 7 * 86400.0

FormatValidator = Callable[[YamlDocument], tuple[Problem, ...]]
"""Checks one loaded document of a format and returns every problem (empty when valid)."""

_FORMATS: dict[str, FormatValidator] = {}
FORMATS_GROUP = "bcdrill.formats"  # entry points: "<format>" = "module:validator"
_entry_points_loaded: list[bool] = []
_PLANNED_FORMATS = ("drill-plan/v1",)
_SECRET_FIELDS = frozenset({"key", "password", "token", "secret", "passphrase"})
_DURATION_HINT = "is not a duration like '90s', '5m' or '1h30m'"
_PATTERN_HINTS = {
    DURATION_PATTERN: _DURATION_HINT,
    r"^[a-z][a-z0-9_-]*$": "is not a valid name: use lowercase letters, digits, '_' and '-', "
    "starting with a letter",
    r"^[a-z0-9][a-z0-9-]*$": "is not a valid id: use lowercase letters, digits and '-'",
    r"^(msp|client)\.[a-z][a-z0-9_-]*$": "is not a step key like 'msp.mitigate'",
    r"^((msp|client)\.)?[a-z][a-z0-9_-]*$": "is not a step id or key like 'client.report'",
    r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$": "is not a plugin name like 'docker.stop'",
    r"^https?://.+": "is not an http:// or https:// URL",
    r"^[A-Z]{3}$": "is not a currency code like 'EUR'",
}
_JSON_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
}
_YAML11_BOOLEANS = frozenset(
    {"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF"}
)


# ---------------------------------------------------------------- public API


def register_format(name: str, validator: FormatValidator) -> None:
    """Let ``validate_file`` check files whose ``format`` is ``name`` (e.g. ``drill-plan/v1``)."""
    current = _FORMATS.get(name)
    if current is not None and current is not validator:
        raise RegistrationError(f"file format {name!r} already has a validator ({current!r})")
    _FORMATS[name] = validator


def _load_format_plugins() -> None:
    """Register validators declared under the ``bcdrill.formats`` entry-point group, once."""
    if _entry_points_loaded:
        return
    _entry_points_loaded.append(True)
    for ep in entry_points(group=FORMATS_GROUP):
        try:
            validator = ep.load()
        except Exception as exc:
            raise RegistrationError(
                f"file format {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        if not callable(validator):
            raise RegistrationError(f"file format {ep.name!r}: {validator!r} is not callable")
        register_format(ep.name, validator)


def load_playbook(path: Path) -> Playbook:
    """Load and fully validate a playbook; raise :class:`PlaybookError` listing every problem."""
    doc = _load(path, PlaybookError)
    problems = _other_format(doc, PLAYBOOK_FORMAT) or validate_playbook_document(doc)
    if problems:
        raise PlaybookError(f"{path}: {len(problems)} problem(s)", problems)
    return _build_playbook(doc.data, path)


def load_environment(path: Path) -> Environment:
    """Load and fully validate an environment file; raise :class:`EnvironmentFileError`."""
    doc = _load(path, EnvironmentFileError)
    problems = _other_format(doc, ENVIRONMENT_FORMAT) or validate_environment_document(doc)
    if problems:
        raise EnvironmentFileError(f"{path}: {len(problems)} problem(s)", problems)
    return _build_environment(doc.data, path)


def validate_file(path: Path) -> tuple[str, tuple[Problem, ...]]:
    """Detect the file's format and return it with every problem (none when the file is valid).

    The format is ``""`` when the file cannot be read or has no usable ``format`` field.
    """
    try:
        doc = load_yaml(path)
    except InputError as exc:
        return "", exc.problems
    _load_format_plugins()
    fmt = doc.data.get("format")
    known = ", ".join(sorted({*_FORMATS, *_PLANNED_FORMATS}))
    if not isinstance(fmt, str):
        message = f"missing 'format' field: say which kind of file this is ({known})"
        return "", (doc.problem(("format",), message),)
    validator = _FORMATS.get(fmt)
    if validator is not None:
        return fmt, validator(doc)
    if fmt in _PLANNED_FORMATS:
        message = f"{fmt!r} files cannot be validated yet: no validator is registered for them"
    else:
        message = f"unknown format {fmt!r} (this bcdrill reads: {known})"
    return fmt, (doc.problem(("format",), message),)


def check_against_environment(playbook: Playbook, environment: Environment) -> tuple[Problem, ...]:
    """Problems running ``playbook`` in ``environment``: unbound targets, wrong target kinds."""
    where = _Locator(playbook.source)
    problems: list[Problem] = []
    bound = ", ".join(sorted(environment.targets)) or "none"
    env_name = f"environment {environment.name!r}"
    for i, name in enumerate(playbook.targets):
        if name not in environment.targets:
            problems.append(
                where.problem(
                    ("targets", i), f"target {name!r} is not bound in {env_name} (bound: {bound})"
                )
            )
    for i, fault in enumerate(playbook.faults):
        binding = environment.targets.get(fault.target)
        if binding is None:
            continue
        message = _binding_mismatch(fault, binding, playbook.safety.max_targets_per_fault)
        if message:
            problems.append(where.problem(("faults", i, "target"), f"{message} in {env_name}"))
    return tuple(problems)


def _binding_mismatch(fault: FaultSpec, binding: TargetBinding, max_targets: int) -> str:
    try:
        action = FAULTS.get(fault.action)
    except UnknownPluginError as exc:
        return str(exc)
    if action.target_kind != binding.kind:
        return (
            f"action {fault.action!r} needs {action.target_kind}s but target "
            f"{fault.target!r} is bound to {binding.kind}s {list(binding.refs)!r}"
        )
    if len(binding.refs) > max_targets:
        return (
            f"target {fault.target!r} is bound to {len(binding.refs)} {binding.kind}s, more "
            f"than safety.max_targets_per_fault ({max_targets})"
        )
    return ""


class _Locator:
    """Finds lines in a model's source file again (after loading, only the model is left)."""

    def __init__(self, source: Path | None) -> None:
        self.file = str(source) if source else "<playbook>"
        self.doc: YamlDocument | None = None
        if source is not None:
            try:
                self.doc = load_yaml(source)
            except InputError:
                self.doc = None

    def problem(self, path: JsonPath, message: str) -> Problem:
        if self.doc is None:
            return Problem(self.file, 0, 0, field_name(path), message)
        return self.doc.problem(path, message)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The packaged JSON Schema ``engine/schema/<name>.schema.json`` (``playbook``…)."""
    text = files("engine").joinpath("schema", f"{name}.schema.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def schema_problems(
    doc: YamlDocument, schema: Mapping[str, Any], data: Any = None, prefix: JsonPath = ()
) -> list[Problem]:
    """Every draft-07 error of ``data`` (the whole document by default), located by ``doc``.

    ``prefix`` is where ``data`` sits in the document (e.g. ``("faults", 0, "params")``).
    """
    instance = doc.data if data is None else data
    problems: list[Problem] = []
    for error in _validator_for(schema).iter_errors(instance):
        problems.extend(_translate(doc, error, prefix))
    return _unique(_sorted(problems))


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Draft7Validator]] = {}


def _validator_for(schema: Mapping[str, Any]) -> Draft7Validator:
    """A validator per schema object (schemas are class constants or cached files)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_VALIDATORS) >= 256:  # callers that rebuild their schema each time
            _VALIDATORS.clear()
        cached = _VALIDATORS[id(schema)] = (schema, Draft7Validator(schema))
    return cached[1]


def validate_playbook_document(doc: YamlDocument) -> tuple[Problem, ...]:
    """Schema and semantic problems of a loaded playbook document."""
    problems = schema_problems(doc, load_schema("playbook"))
    problems += _sorted(_playbook_semantics(doc))
    return tuple(_unique(problems))


def validate_environment_document(doc: YamlDocument) -> tuple[Problem, ...]:
    """Schema and semantic problems of a loaded environment document."""
    problems = schema_problems(doc, load_schema("environment"))
    problems += _sorted(_environment_semantics(doc))
    return tuple(_unique(problems))


def _load(path: Path, error: type[InputError]) -> YamlDocument:
    try:
        return load_yaml(path)
    except InputError as exc:
        raise error(str(exc), exc.problems) from exc


def _other_format(doc: YamlDocument, expected: str) -> tuple[Problem, ...]:
    """One clear problem when the file is another known kind (e.g. an environment file)."""
    fmt = doc.data.get("format")
    if fmt == expected or fmt not in {*_FORMATS, *_PLANNED_FORMATS}:
        return ()
    return (doc.problem(("format",), f"this file is {fmt!r}, not {expected!r}"),)


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column, p.field))


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------- schema errors → problems


def _translate(doc: YamlDocument, error: ValidationError, prefix: JsonPath) -> list[Problem]:
    path: JsonPath = (*prefix, *error.absolute_path)
    validator = str(error.validator)
    if validator == "additionalProperties":
        return _unknown_fields(doc, error, path)
    if validator == "required":
        return [
            doc.problem((*path, name), f"missing required field {name!r}")
            for name in error.validator_value
            if isinstance(error.instance, dict) and name not in error.instance
        ]
    if validator in ("oneOf", "anyOf"):
        return _alternatives(doc, error, prefix)
    if "propertyNames" in error.relative_schema_path:
        key = str(error.instance)
        return [doc.problem((*path, key), f"key {key!r} {_hint(error)}", at_key=True)]
    return [doc.problem(path, _message(error, path))]


def _unknown_fields(doc: YamlDocument, error: ValidationError, path: JsonPath) -> list[Problem]:
    allowed = sorted(error.schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    problems = []
    for key in sorted(set(instance) - set(allowed)):
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        message = f"unknown field {key!r} ({hint}allowed: {', '.join(allowed)})"
        problems.append(doc.problem((*path, key), message, at_key=True))
    return problems


def _alternatives(doc: YamlDocument, error: ValidationError, prefix: JsonPath) -> list[Problem]:
    """Report a failed oneOf/anyOf through the one branch whose type fits, else list them."""
    path: JsonPath = (*prefix, *error.absolute_path)
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.schema_path[0]), []).append(sub)
    fitting = [
        errors
        for errors in branches.values()
        if not any(e.validator in ("type", "enum") and not e.path for e in errors)
    ]
    if len(fitting) == 1:
        return [p for sub in fitting[0] for p in _translate(doc, sub, prefix)]
    forms = [str(b.get("description", b.get("title", "?"))) for b in error.validator_value]
    shown = _show(error.instance, path)
    return [doc.problem(path, f"{shown} is none of the allowed forms: {' | '.join(forms)}")]


def _message(error: ValidationError, path: JsonPath) -> str:
    """A plain-words message for one schema error (never echoing a secret's value)."""
    value, shown, expected = error.instance, _show(error.instance, path), error.validator_value
    match error.validator:
        case "type" if error.schema.get("pattern") == DURATION_PATTERN:
            unit = f" (with a unit, e.g. '{value}s')" if isinstance(value, int | float) else ""
            return f"{shown} {_DURATION_HINT}{unit}"
        case "type":
            return _type_message(expected, value, shown)
        case "enum":
            return f"{shown} is not one of {', '.join(repr(v) for v in expected)}"
        case "const":
            return f"must be {expected!r}, not {shown}"
        case "pattern":
            return f"{shown} {_hint(error)}"
        case "minItems" | "minProperties" | "minLength" if expected == 1:
            return "must not be empty"
        case "uniqueItems":
            return f"has duplicate entries: {shown}"
        case "minimum":
            return f"{shown} is below the minimum {expected}"
        case "exclusiveMinimum":
            return f"{shown} must be greater than {expected}"
        case "maximum":
            return f"{shown} is above the maximum {expected}"
        case "maxLength":
            return f"is longer than {expected} characters"
    return error.message


def _type_message(expected: Any, value: Any, shown: str) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_JSON_TYPES.get(n, n) for n in names)
    message = f"expected {wanted}, got {_describe(value)} {shown}"
    if "boolean" in names and isinstance(value, str) and value in _YAML11_BOOLEANS:
        message += " (write true or false: words like yes/no/on/off are text in bcdrill files)"
    return message


def _hint(error: ValidationError) -> str:
    if error.schema.get("pattern") == r"^(env|file):.+":
        return "must be a reference like 'env:VAR' or 'file:PATH', never the secret itself"
    pattern = str(error.schema.get("pattern", ""))
    return _PATTERN_HINTS.get(pattern, f"does not match {pattern!r}")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "the boolean"
    if isinstance(value, int | float):
        return "the number"
    if isinstance(value, str):
        return "the text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "the value"


def _show(value: Any, path: JsonPath) -> str:
    if path and str(path[-1]) in _SECRET_FIELDS:
        return "the value (hidden: it may be a secret)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- tolerant access for semantics


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dict_items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, item in enumerate(_as_list(value)):
        if isinstance(item, dict):
            yield i, item


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    for i, item in enumerate(_as_list(value)):
        if isinstance(item, str):
            yield i, item


def _duration(value: Any) -> float | None:
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _known(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(set(names)))
    return listed or "none"


# ---------------------------------------------------------------- playbook semantics


def _playbook_semantics(doc: YamlDocument) -> Iterator[Problem]:
    yield from _check_unique_ids(doc)
    yield from _check_target_refs(doc)
    yield from _check_plugins(doc, "faults", "action", FAULTS)
    yield from _check_plugins(doc, "probes", "kind", PROBES)
    yield from _check_probe_refs(doc)
    yield from _check_steps(doc)
    yield from _check_durations(doc, _PLAYBOOK_DURATIONS)
    yield from _check_fault_times(doc)
    yield from _check_scoring(doc)


def _steps(data: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    response = _as_dict(data.get("response"))
    for party in PARTIES:
        for i, step in _dict_items(response.get(party)):
            yield party, i, step


def _check_unique_ids(doc: YamlDocument) -> Iterator[Problem]:
    groups: list[tuple[str, JsonPath]] = [("probe", ("probes",)), ("fault", ("faults",))]
    groups += [(f"{party} step", ("response", party)) for party in PARTIES]
    for what, where in groups:
        container: Any = doc.data
        for part in where:
            container = _as_dict(container).get(str(part))
        first: dict[str, int] = {}
        for i, item in _dict_items(container):
            ident = item.get("id")
            if not isinstance(ident, str):
                continue
            if ident in first:
                at = field_name((*where, first[ident]))
                yield doc.problem((*where, i, "id"), f"duplicate {what} id {ident!r} (also {at})")
            else:
                first[ident] = i


def _check_target_refs(doc: YamlDocument) -> Iterator[Problem]:
    targets = {t for _, t in _strings(doc.data.get("targets"))}
    for section in ("probes", "faults"):
        for i, item in _dict_items(doc.data.get(section)):
            target = item.get("target")
            if isinstance(target, str) and target not in targets:
                message = f"unknown target {target!r} (this playbook's targets: {_known(targets)})"
                yield doc.problem((section, i, "target"), message)


def _check_plugins(doc: YamlDocument, section: str, field: str, registry: Any) -> Iterator[Problem]:
    """Each fault action / probe kind is registered and its params fit its own schema."""
    for i, item in _dict_items(doc.data.get(section)):
        name = item.get(field)
        if not isinstance(name, str):
            continue
        try:
            plugin = registry.get(name)
        except UnknownPluginError as exc:
            yield doc.problem((section, i, field), str(exc))
            continue
        params = item.get("params", {})
        if isinstance(params, dict):
            yield from schema_problems(doc, plugin.params_schema, params, (section, i, "params"))


def _probe_ids(data: dict[str, Any]) -> set[str]:
    return {p["id"] for _, p in _dict_items(data.get("probes")) if isinstance(p.get("id"), str)}


def _check_probe_refs(doc: YamlDocument) -> Iterator[Problem]:
    probes = _probe_ids(doc.data)
    refs: list[tuple[JsonPath, Any]] = [
        (("steady_state", i), p) for i, p in _strings(doc.data.get("steady_state"))
    ]
    safety = _as_dict(doc.data.get("safety"))
    refs += [(("safety", "abort_when", i), p) for i, p in _strings(safety.get("abort_when"))]
    refs.append(
        (("objectives", "rpo_probe"), _as_dict(doc.data.get("objectives")).get("rpo_probe"))
    )
    for party, i, step in _steps(doc.data):
        record = step.get("record")
        if isinstance(record, dict):
            refs.append((("response", party, i, "record", "probe"), record.get("probe")))
    for path, ref in refs:
        if isinstance(ref, str) and ref not in probes:
            yield doc.problem(path, f"unknown probe {ref!r} (probes: {_known(probes)})")


def _check_steps(doc: YamlDocument) -> Iterator[Problem]:
    steps = list(_steps(doc.data))
    response = doc.data.get("response")
    if (
        isinstance(response, dict)
        and not steps
        and all(isinstance(response.get(p, []), list) for p in PARTIES)
    ):
        yield doc.problem(("response",), "needs at least one step (msp or client)")
    keys = {f"{party}.{s['id']}" for party, _, s in steps if isinstance(s.get("id"), str)}
    edges: dict[str, str] = {}
    for party, i, step in steps:
        after = step.get("after")
        if not isinstance(after, str) or not isinstance(step.get("id"), str):
            continue
        key, target = f"{party}.{step['id']}", after if "." in after else f"{party}.{after}"
        if target == key:
            yield doc.problem(("response", party, i, "after"), "a step cannot come after itself")
        elif target not in keys:
            message = f"unknown step {after!r} (steps: {_known(keys)})"
            yield doc.problem(("response", party, i, "after"), message)
        else:
            edges[key] = target
    yield from _check_cycles(doc, steps, edges)
    for i, fault in _dict_items(doc.data.get("faults")):
        until = fault.get("until")
        if isinstance(until, str) and until not in keys:
            message = f"unknown step {until!r} (steps: {_known(keys)})"
            yield doc.problem(("faults", i, "until"), message)


def _check_cycles(
    doc: YamlDocument, steps: list[tuple[str, int, dict[str, Any]]], edges: dict[str, str]
) -> Iterator[Problem]:
    """``after`` links form chains; report each loop once, at its first step in the file."""
    reported: set[str] = set()
    for party, i, step in steps:
        start = f"{party}.{step.get('id')}"
        chain = [start]
        while chain[-1] in edges and edges[chain[-1]] not in chain:
            chain.append(edges[chain[-1]])
        if chain[-1] not in edges or edges[chain[-1]] != start or start in reported:
            continue
        reported.update(chain)
        loop = " → ".join([*chain, start])
        yield doc.problem(("response", party, i, "after"), f"steps wait for each other: {loop}")


# Where durations live, as paths with "*" for any list index or mapping key; and whether 0 is ok.
_PLAYBOOK_DURATIONS: tuple[tuple[JsonPath, bool], ...] = (
    (("probes", "*", "interval"), False),
    (("probes", "*", "timeout"), False),
    (("faults", "*", "at"), True),
    (("faults", "*", "duration"), False),
    (("response", "msp", "*", "within"), False),
    (("response", "client", "*", "within"), False),
    (("objectives", "rto"), False),
    (("objectives", "rpo"), True),
    (("safety", "max_duration"), False),
)
_ENVIRONMENT_DURATIONS: tuple[tuple[JsonPath, bool], ...] = (
    (("docker", "timeout"), False),
    (("ssh_hosts", "*", "connect_timeout"), False),
    (("ssh_hosts", "*", "command_timeout"), False),
)


def _find(value: Any, pattern: JsonPath, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """Values matching ``pattern`` ("*" = any index or key), with their paths."""
    if not pattern:
        yield path, value
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*" and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _find(item, rest, (*path, i))
    elif head == "*" and isinstance(value, dict):
        for key, item in value.items():
            yield from _find(item, rest, (*path, key))
    elif isinstance(value, dict) and head in value:
        yield from _find(value[head], rest, (*path, head))


def _check_durations(
    doc: YamlDocument, where: Sequence[tuple[JsonPath, bool]]
) -> Iterator[Problem]:
    for pattern, zero_ok in where:
        for path, text in _find(doc.data, pattern):
            if not isinstance(text, str):
                continue
            try:
                seconds = parse_duration(text)
            except ValueError as exc:
                if "units" in str(exc):  # the schema already reported other malformed ones
                    yield doc.problem(path, str(exc))
                continue
            if seconds == 0 and not zero_ok:
                yield doc.problem(path, f"{text!r} must be longer than zero")
            elif seconds > MAX_DURATION_S:
                yield doc.problem(path, f"{text!r} is longer than the 7-day limit")


def _check_fault_times(doc: YamlDocument) -> Iterator[Problem]:
    limit = _duration(_as_dict(doc.data.get("safety")).get("max_duration"))
    limit = Safety().max_duration_s if limit is None else limit
    for i, fault in _dict_items(doc.data.get("faults")):
        at = _duration(fault.get("at"))
        if at is not None and at >= limit:
            message = (
                f"{fault['at']!r} is not before safety.max_duration "
                f"({limit:g}s): this fault would never be injected"
            )
            yield doc.problem(("faults", i, "at"), message)


def _check_scoring(doc: YamlDocument) -> Iterator[Problem]:
    scoring = _as_dict(doc.data.get("scoring"))
    weights = _as_dict(scoring.get("weights"))
    numbers = [w for w in weights.values() if isinstance(w, int | float)]
    if weights and len(numbers) == len(weights) and sum(numbers) <= 0:
        yield doc.problem(("scoring", "weights"), "at least one party weight must be above 0")
    bands = _as_dict(scoring.get("bands"))
    values = [bands.get(k) for k in ("P", "S", "M")]
    numbers = [v for v in values if isinstance(v, int | float)]
    if len(numbers) == 3 and not numbers[0] > numbers[1] > numbers[2]:
        message = f"bands must descend, P > S > M (got P={values[0]}, S={values[1]}, M={values[2]})"
        yield doc.problem(("scoring", "bands"), message)


# ---------------------------------------------------------------- environment semantics


def _environment_semantics(doc: YamlDocument) -> Iterator[Problem]:
    hosts = _as_dict(doc.data.get("ssh_hosts"))
    for name, binding in _as_dict(doc.data.get("targets")).items():
        if not isinstance(binding, dict):
            continue
        kinds = [k for k in ("containers", "hosts") if k in binding]
        if len(kinds) != 1:
            message = "give exactly one of 'containers' or 'hosts'"
            yield doc.problem(("targets", name), message, at_key=True)
        for i, host in _strings(binding.get("hosts")):
            if host not in hosts:
                message = f"unknown SSH host {host!r} (ssh_hosts: {_known(hosts)})"
                yield doc.problem(("targets", name, "hosts", i), message)
    for name, host in hosts.items():
        if not isinstance(host, dict):
            continue
        if "host_key" not in host and "known_hosts" not in host:
            message = "needs host_key or known_hosts: host keys are pinned, never auto-accepted"
            yield doc.problem(("ssh_hosts", name), message, at_key=True)
        if "key" not in host and host.get("agent") is not True:
            message = "needs key (env:/file: reference) or agent: true"
            yield doc.problem(("ssh_hosts", name), message, at_key=True)
    docker = _as_dict(doc.data.get("docker"))
    if docker.get("tls_verify") is True and "ca_cert" not in docker:
        yield doc.problem(("docker", "tls_verify"), "tls_verify needs ca_cert (the CA to trust)")
    yield from _check_durations(doc, _ENVIRONMENT_DURATIONS)


# ---------------------------------------------------------------- building the models


def _seconds(value: Any, default: float) -> float:
    return default if value is None else parse_duration(value)


def _optional_seconds(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def _build_playbook(data: dict[str, Any], source: Path) -> Playbook:
    probes = tuple(
        ProbeSpec(
            id=p["id"],
            kind=p["kind"],
            target=p.get("target"),
            interval_s=_seconds(p.get("interval"), 1.0),
            timeout_s=_seconds(p.get("timeout"), 2.0),
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
        )
        for f in data["faults"]
    )
    return Playbook(
        id=data["id"],
        title=data["title"],
        summary=data.get("summary", ""),
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
    )


def _build_steps(response: dict[str, Any]) -> Iterator[ResponseStep]:
    for party in PARTIES:
        for step in response.get(party, []):
            record = step["record"]
            recording = (
                Recording(kind=cast(Literal["ack", "webhook"], record))
                if isinstance(record, str)
                else Recording(kind="probe", probe=record["probe"], state=record["state"])
            )
            after = step.get("after")
            yield ResponseStep(
                party=party,
                id=step["id"],
                title=step["title"],
                within_s=parse_duration(step["within"]),
                after=None if after is None else (after if "." in after else f"{party}.{after}"),
                recorded_by=recording,
                weight=float(step.get("weight", 1.0)),
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
        weights=frozen_mapping({k: float(v) for k, v in weights.items()})
        if weights
        else default.weights,
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


def _build_environment(data: dict[str, Any], source: Path) -> Environment:
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
        hosts=frozen_mapping(
            {name: _build_host(name, h) for name, h in data.get("ssh_hosts", {}).items()}
        ),
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


register_format(PLAYBOOK_FORMAT, validate_playbook_document)
register_format(ENVIRONMENT_FORMAT, validate_environment_document)
