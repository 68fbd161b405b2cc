"""The published debrief JSON Schema (draft-07) and a validator that reports every error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft7Validator

SCHEMA_FILE = "debrief.schema.json"


@cache
def debrief_schema() -> dict[str, Any]:
    """The ``bcdrill/debrief/v1`` JSON Schema, as shipped in ``reports/schema/``."""
    text = files("reports").joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def debrief_errors(data: Mapping[str, Any]) -> list[str]:
    """Every way ``data`` breaks the schema, as ``$.json.path: message`` lines (empty if valid)."""
    validator = Draft7Validator(debrief_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: e.json_path)
    return [f"{e.json_path}: {e.message}" for e in errors]
