"""JSON Schema errors turned into located, plain-words problems.

:func:`schema_problems` runs a draft-07 validator over a loaded YAML document (or a part of
it, such as one fault's ``params``) and turns *every* error from ``iter_errors`` into a
:class:`~engine.errors.Problem` at the field's ``file:line:column``: unknown fields with a
"did you mean", missing required fields, the one fitting branch of a ``oneOf``, and hints for
the project's patterns (durations, names, secret references). A value under a secret-looking
key is never echoed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from typing import Any, cast

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from engine.errors import Problem
from engine.model.durations import DURATION_PATTERN
from engine.spec.yamlsafe import JsonPath, YamlDocument

__all__ = ["load_schema", "schema_problems", "sort_problems", "unique_problems"]

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


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The packaged JSON Schema ``engine/spec/schema/<name>.schema.json`` (``playbook``…)."""
    text = files("engine.spec").joinpath("schema", f"{name}.schema.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def schema_problems(
    doc: YamlDocument,
    schema: Mapping[str, Any],
    data: Any = None,
    prefix: JsonPath = (),
    hints: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every draft-07 error of ``data`` (the whole document by default), located by ``doc``.

    ``prefix`` is where ``data`` sits in the document (e.g. ``("faults", 0, "params")``).
    ``hints`` maps a schema ``pattern`` to the words that say what a value must look like
    (e.g. ``"is not a date like '2027-01-31'"``), on top of the engine's own.
    """
    instance = doc.data if data is None else data
    table = {**_PATTERN_HINTS, **(hints or {})}
    problems: list[Problem] = []
    for error in _validator_for(schema).iter_errors(instance):
        problems.extend(_translate(doc, error, prefix, table))
    return unique_problems(sort_problems(problems))


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Draft7Validator]] = {}


def _validator_for(schema: Mapping[str, Any]) -> Draft7Validator:
    """A validator per schema object (schemas are class constants or cached files)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_VALIDATORS) >= 256:  # callers that rebuild their schema each time
            _VALIDATORS.clear()
        cached = _VALIDATORS[id(schema)] = (schema, Draft7Validator(schema))
    return cached[1]


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """``problems`` in file order: by line, column, then field path."""
    return sorted(problems, key=lambda p: (p.line, p.column, p.field))


def unique_problems(problems: Iterable[Problem]) -> list[Problem]:
    """``problems`` without repeats, first occurrence kept, order unchanged."""
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------- schema errors → problems


def _translate(
    doc: YamlDocument, error: ValidationError, prefix: JsonPath, hints: Mapping[str, str]
) -> list[Problem]:
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
        return _alternatives(doc, error, prefix, hints)
    if "propertyNames" in error.relative_schema_path:
        key = str(error.instance)
        return [doc.problem((*path, key), f"key {key!r} {_hint(error, hints)}", at_key=True)]
    return [doc.problem(path, _message(error, path, hints))]


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


def _alternatives(
    doc: YamlDocument, error: ValidationError, prefix: JsonPath, hints: Mapping[str, str]
) -> list[Problem]:
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
        return [p for sub in fitting[0] for p in _translate(doc, sub, prefix, hints)]
    forms = [str(b.get("description", b.get("title", "?"))) for b in error.validator_value]
    shown = _show(error.instance, path)
    return [doc.problem(path, f"{shown} is none of the allowed forms: {' | '.join(forms)}")]


def _message(error: ValidationError, path: JsonPath, hints: Mapping[str, str]) -> str:
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
            return f"{shown} {_hint(error, hints)}"
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


def _hint(error: ValidationError, hints: Mapping[str, str]) -> str:
    if error.schema.get("pattern") == r"^(env|file):.+":
        return "must be a reference like 'env:VAR' or 'file:PATH', never the secret itself"
    pattern = str(error.schema.get("pattern", ""))
    return hints.get(pattern, f"does not match {pattern!r}")


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
