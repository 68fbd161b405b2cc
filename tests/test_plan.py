"""Drill plan v1 files: the strict loader, located problems, the packaged schema."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from drills.programme.drill_plans import (
    CommandIncidentCheck,
    DrillPlanError,
    HttpIncidentCheck,
    load_plan,
    plan_schema,
)
from drills.programme.schedule import allowed_minutes, pick_times
from engine.spec.loader import load_environment, load_playbook, validate_file

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "playbooks" / "plans" / "demo-bakery-2027.yaml"


def write(tmp_path: Path, text: str) -> Path:
    """A plan file next to an environment and a playbook that exist and bind to each other."""
    (tmp_path / "env.yaml").write_text((EXAMPLE.parent / "demo-bakery-lab.environment.yaml").read_text())
    (tmp_path / "pb.yaml").write_text((REPO / "playbooks" / "storefront-down.yaml").read_text())
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


MINIMAL = """\
format: drill-plan/v1
client: Demo
environment: env.yaml
playbooks: [pb.yaml]
window: {start: 2027-01-01, end: 2027-01-31}
time_zone: America/New_York
business_hours: {mon: ["09:00-17:00"]}
controllers: [{name: Carla}]
"""


def test_the_example_plan_loads_with_everything_resolved() -> None:
    plan = load_plan(EXAMPLE)
    assert plan.client == "Demo Bakery Ltd"
    assert plan.environment == (EXAMPLE.parent / "demo-bakery-lab.environment.yaml").resolve()
    assert plan.playbooks == ((REPO / "playbooks" / "storefront-down.yaml").resolve(),)
    assert (plan.window.first, plan.window.last) == (date(2027, 1, 1), date(2027, 3, 31))
    assert [str(r) for r in plan.business_hours.days[4]] == ["09:30-12:30", "13:30-16:00"]
    assert plan.business_hours.days[5] == ()
    assert plan.blacked_out(date(2027, 1, 6)) and plan.blacked_out(date(2027, 3, 28))
    assert not plan.blacked_out(date(2027, 1, 7))
    assert plan.blackouts[1].reason == "month-end close"
    assert (plan.min_spacing_s, plan.quota, plan.drill_length_s) == (30 * 86400, 1, 3600)
    assert plan.controllers[0].contact == "carla@msp.example"
    assert isinstance(plan.incident_check, HttpIncidentCheck) and plan.incident_check.equals is True
    assert plan.pool == "site-demo-bakery-ltd"


def test_the_example_plan_points_at_valid_files_and_can_be_scheduled() -> None:
    plan = load_plan(EXAMPLE)
    assert load_environment(plan.environment).client == plan.client
    assert load_playbook(plan.playbooks[0]).id == "storefront-down"
    (drill,) = pick_times([plan], random.Random(2027))
    assert drill.start_s // 60 in allowed_minutes(plan)


def test_validate_file_knows_the_format_through_the_entry_point() -> None:
    assert validate_file(EXAMPLE) == ("drill-plan/v1", ())


def test_the_schema_is_draft_07_and_accepts_the_example() -> None:
    schema = plan_schema()
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    data = yaml.safe_load(EXAMPLE.read_text())
    data = json.loads(json.dumps(data, default=str))  # PyYAML reads dates as dates
    assert list(Draft7Validator(schema).iter_errors(data)) == []


def test_left_out_weekdays_are_closed_and_defaults_apply(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, MINIMAL))
    assert [bool(d) for d in plan.business_hours.days] == [True] + [False] * 6
    assert (plan.min_spacing_s, plan.quota, plan.drill_length_s) == (0, 1, 3600)
    assert plan.blackouts == () and plan.incident_check is None


BAD = """\
format: drill-plan/v1
client: Demo
environment: nowhere.yaml
playbooks: [pb.yaml]
window: {start: 2027-02-30, end: 2027-01-31}
time_zone: Mars/Olympus
business_hours:
  mon: ["09:30-17:00", "12:00-13:00"]
  tue: ["17:00-09:00"]
  wed: ["9:30-17:00"]
blackouts: [2027-01-06, {from: 2027-03-25, to: 2027-03-01}, 5]
min_spacing: 30m1h
quota: 0
drill_length: 0s
controllers: []
colour: blue
"""


def test_every_problem_is_reported_with_its_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(DrillPlanError) as caught:
        load_plan(write(tmp_path, BAD))
    found = {(p.line, p.field) for p in caught.value.problems}
    assert found == {
        (3, "environment"),
        (5, "window.start"),
        (6, "time_zone"),
        (8, "business_hours.mon[1]"),
        (9, "business_hours.tue[0]"),
        (10, "business_hours.wed[0]"),
        (11, "blackouts[1].to"),
        (11, "blackouts[2]"),
        (12, "min_spacing"),
        (13, "quota"),
        (14, "drill_length"),
        (15, "controllers"),
        (16, "colour"),
    }
    assert caught.value.exit_code == 2
    messages = "\n".join(str(p) for p in caught.value.problems)
    assert "'9:30-17:00' is not a range like '09:30-17:00'" in messages
    assert "unknown time zone 'Mars/Olympus'" in messages
    assert "12:00-13:00 overlaps 09:30-17:00" in messages
    assert all(p.file == str(tmp_path / "plan.yaml") for p in caught.value.problems)


def test_window_longer_than_a_year_and_reversed_dates(tmp_path: Path) -> None:
    text = MINIMAL.replace("end: 2027-01-31", "end: 2028-06-30")
    with pytest.raises(DrillPlanError, match="at most 366"):
        load_plan(write(tmp_path, text))
    text = MINIMAL.replace("end: 2027-01-31", "end: 2026-12-31")
    with pytest.raises(DrillPlanError, match="'2026-12-31' is before '2027-01-01'"):
        load_plan(write(tmp_path, text))


def test_yaml_is_read_strictly(tmp_path: Path) -> None:
    with pytest.raises(DrillPlanError, match="client"):  # duplicate key
        load_plan(write(tmp_path, MINIMAL + "client: Other\n"))
    with pytest.raises(DrillPlanError, match="expected an integer"):
        load_plan(write(tmp_path, MINIMAL + "quota: yes\n"))
    with pytest.raises(DrillPlanError, match="no such file"):
        load_plan(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- incident check and work pool


def test_an_http_incident_check_loads_with_its_timeout(tmp_path: Path) -> None:
    text = MINIMAL + (
        "incident_check:\n"
        "  http: https://incidents.example/api/v1/incidents?status=open\n"
        "  open_when: {json_field: any_open, equals: true}\n"
        "  timeout: 3s\n"
    )
    check = load_plan(write(tmp_path, text)).incident_check
    assert check == HttpIncidentCheck(
        "https://incidents.example/api/v1/incidents?status=open", "any_open", True, 3.0
    )


def test_a_command_incident_check_loads_with_paths_from_the_plan_folder(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "incident-open").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "incident-open").chmod(0o755)
    text = MINIMAL + "incident_check: {command: [bin/incident-open, --service, shop]}\n"
    check = load_plan(write(tmp_path, text)).incident_check
    assert isinstance(check, CommandIncidentCheck)
    assert check.command == (str(tmp_path.resolve() / "bin" / "incident-open"), "--service", "shop")
    assert check.timeout_s == 10.0 and check.workdir == tmp_path.resolve()
    assert check.program == "incident-open"
    bare = load_plan(write(tmp_path, MINIMAL + "incident_check: {command: [check-pagerduty], timeout: 1m}\n"))
    assert bare.incident_check == CommandIncidentCheck(("check-pagerduty",), 60.0, tmp_path.resolve())


def _problems(tmp_path: Path, text: str) -> set[tuple[int, str, str]]:
    with pytest.raises(DrillPlanError) as caught:
        load_plan(write(tmp_path, text))
    assert caught.value.exit_code == 2
    return {(p.line, p.field, p.message) for p in caught.value.problems}


def test_an_incident_check_needs_exactly_one_of_http_and_command(tmp_path: Path) -> None:
    both = MINIMAL + (
        "incident_check:\n"
        "  http: http://127.0.0.1:9/status\n"
        "  open_when: {json_field: open, equals: true}\n"
        "  command: [check-incident]\n"
    )
    assert _problems(tmp_path, both) == {
        (12, "incident_check.command", "give either http (a status URL) or command (an argv list), not both")
    }
    neither = MINIMAL + "incident_check: {timeout: 5s}\n"
    assert _problems(tmp_path, neither) == {
        (9, "incident_check", "give one of http (a status URL) or command (an argv list)")
    }


def test_incident_check_forms_and_timeouts_are_checked_where_they_are_written(tmp_path: Path) -> None:
    text = MINIMAL + (
        "incident_check:\n"
        "  command: [./missing-check.sh, '']\n"
        "  open_when: {json_field: open, equals: true}\n"
        "  timeout: 10m\n"
    )
    found = {(line, field) for line, field, _ in _problems(tmp_path, text)}
    assert found == {
        (10, "incident_check.command[0]"),  # no such program next to the plan
        (10, "incident_check.command[1]"),  # empty argument
        (11, "incident_check.open_when"),  # http only
        (12, "incident_check.timeout"),  # above 2m
    }
    (tmp_path / "check.sh").write_text("#!/bin/sh\nexit 1\n")  # not executable
    problems = _problems(tmp_path, MINIMAL + "incident_check: {command: [./check.sh]}\n")
    assert {(line, field) for line, field, _ in problems} == {(9, "incident_check.command[0]")}
    assert "is not executable (chmod +x" in next(iter(problems))[2]
    no_rule = MINIMAL + "incident_check: {http: 'http://127.0.0.1:9/status', timeout: 0s}\n"
    messages = {message for _, _, message in _problems(tmp_path, no_rule)}
    assert messages == {
        "http needs open_when: {json_field: ..., equals: ...}",
        "'0s' must be longer than zero and at most 120s",
    }


def test_a_plan_may_name_its_work_pool(tmp_path: Path) -> None:
    assert load_plan(write(tmp_path, MINIMAL + "pool: site-demo-north_1.a\n")).pool == "site-demo-north_1.a"
    assert load_plan(write(tmp_path, MINIMAL)).pool is None
    assert _problems(tmp_path, MINIMAL + "pool: drill-run/site\n") == {
        (9, "pool", "'drill-run/site' is not a work pool name like 'site-demo-bakery'")
    }
