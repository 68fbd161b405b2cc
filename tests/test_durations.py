"""Durations as written in playbooks: parsing and display."""

from __future__ import annotations

import pytest

from engine.model.durations import DURATION_PATTERN, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2d", 172800.0),
        ("1d2h3m4s5ms", 93784.005),
        ("0.5m", 30.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "5", "5 min", "5min", "m", "-5s", "1h 30m", "5S", "1.s", ".5s", "1e3s", "5m\n"]
)
def test_malformed_durations_are_rejected_by_name(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"{text!r} is not a duration like '90s', '5m' or '1h30m'"


@pytest.mark.parametrize("text", ["30m1h", "5s5s", "1s1m", "100ms1s"])
def test_units_go_from_largest_to_smallest_once(text: str) -> None:
    with pytest.raises(ValueError, match="units must go from largest to smallest, once each"):
        parse_duration(text)


@pytest.mark.parametrize("value", [90, 1.5, None, ["5m"]])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)  # type: ignore[arg-type]


def test_pattern_is_what_the_json_schemas_use() -> None:
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "engine" / "spec" / "schema"
    for name in ("playbook", "environment"):
        schema = json.loads((root / f"{name}.schema.json").read_text())
        assert schema["definitions"]["duration"]["pattern"] == DURATION_PATTERN


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0.0s"),
        (12.34, "12.3s"),
        (59.9, "59.9s"),
        (60, "1m00s"),
        (245, "4m05s"),
        (3720, "1h02m"),
        (-90, "-1m30s"),
        (-0.5, "-0.5s"),
    ],
)
def test_format(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_round_trip_of_whole_minutes() -> None:
    for minutes in range(1, 200, 7):
        assert parse_duration(f"{minutes}m") == minutes * 60
        hours, rest = divmod(minutes, 60)
        expected = f"{hours}h{rest:02d}m" if hours else f"{minutes}m00s"
        assert format_duration(parse_duration(f"{minutes}m")) == expected
