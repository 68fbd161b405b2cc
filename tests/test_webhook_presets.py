"""Webhook presets for common service-desk tools, through the real desk app on loopback.

Each preset gets a realistic ticket-created payload of its tool (subject quoting the drill
code, the tool's own time format, the requester), signed like every hook: the step is
recorded by the ticket's requester with the ticket's own time; a ticket of another drill is
ignored and an unsigned one gets the same 404 as any invalid request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from drills.desk.webhooks import correlation_code, load_webhooks
from engine.errors import InputError
from tests.test_desk import make_harness

HOOKS_YAML = """\
format: desk-webhooks/v1
hooks:
""" + "".join(
    f"  {name}:\n    preset: {name}\n    secret: env:TEST_DESK_HOOK_SECRET\n    step: client.report\n"
    for name in ("jira", "servicenow", "zendesk", "freshdesk")
)


def _jira(subject: str, at: datetime) -> dict[str, Any]:
    created = f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}+0000"
    return {
        "timestamp": int(at.timestamp() * 1000),
        "webhookEvent": "jira:issue_created",
        "issue_event_type_name": "issue_created",
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Priya Shah"},
        "issue": {
            "id": "10042",
            "key": "SD-42",
            "fields": {
                "summary": subject,
                "created": created,
                "reporter": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Priya Shah"},
                "issuetype": {"name": "Incident"},
                "priority": {"name": "High"},
            },
        },
    }


def _servicenow(subject: str, at: datetime) -> dict[str, Any]:
    return {
        "number": "INC0010042",
        "sys_id": "9d385017c611228701d22104cc95c371",
        "short_description": subject,
        "sys_created_on": f"{at:%Y-%m-%d %H:%M:%S}",  # glide time: UTC, no zone
        "caller_id": "Priya Shah",
        "priority": "2",
        "state": "1",
    }


def _zendesk(subject: str, at: datetime) -> dict[str, Any]:
    stamp = f"{at:%Y-%m-%dT%H:%M:%S}Z"
    return {
        "account_id": 22129848,
        "detail": {
            "id": "35",
            "subject": subject,
            "created_at": stamp,
            "requester_id": "Priya Shah",
            "status": "NEW",
            "priority": "HIGH",
        },
        "event": {},
        "id": "cbe4028c-7239-495d-b020-f22348516046",
        "subject": "zen:ticket:35",
        "time": stamp,
        "type": "zen:event-type:ticket.created",
        "zendesk_event_version": "2022-11-06",
    }


def _freshdesk(subject: str, _at: datetime) -> dict[str, Any]:
    return {
        "freshdesk_webhook": {
            "ticket_id": 42,
            "ticket_subject": subject,
            "ticket_contact_name": "Priya Shah",
            "ticket_contact_email": "priya@bakery.example",
            "ticket_status": "Open",
            "ticket_priority": "High",
        }
    }


PAYLOADS: dict[str, Callable[[str, datetime], dict[str, Any]]] = {
    "jira": _jira,
    "servicenow": _servicenow,
    "zendesk": _zendesk,
    "freshdesk": _freshdesk,
}


@pytest.mark.parametrize("preset", list(PAYLOADS))
def test_a_preset_maps_its_tools_ticket_payload_to_the_step(
    preset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = make_harness(tmp_path, monkeypatch, hooks_yaml=HOOKS_YAML)
    try:
        harness.impact()
        if preset in ("servicenow", "zendesk"):  # whole-second ticket times: the next second
            time.sleep(1.0 - time.time() % 1.0 + 0.01)
        time.sleep(0.01)
        created = datetime.now(UTC)
        time.sleep(0.01)
        code = correlation_code(harness.run_dir.name)
        other = PAYLOADS[preset]("[BCD-00000000] another drill's ticket", created)
        assert harness.hook(other, name=preset).json()["status"] == "ignored"
        unsigned = httpx.post(f"{harness.url}/hooks/{preset}", json=other)
        assert unsigned.status_code == 404 and unsigned.json() == {"detail": "Not Found"}
        answer = harness.hook(PAYLOADS[preset](f"[{code}] web shop down", created), name=preset)
        assert answer.status_code == 202 and answer.json()["status"] == "recorded", answer.text
        (record,) = harness.recorded()
        data = record["data"]
        assert (data["step"], data["by"], data["source"]) == ("client.report", "Priya Shah", "webhook")
        if preset == "freshdesk":  # its placeholders carry no machine-readable time
            assert "ticket created" not in data["note"] and "ignored" not in data["note"]
        else:
            assert f"ticket created {created:%Y-%m-%dT%H:%M:%S}" in data["note"], data["note"]
    finally:
        harness.desk.stop()


def test_an_unknown_preset_is_named_and_given_fields_win(tmp_path: Path) -> None:
    path = tmp_path / "lab.webhooks.yaml"
    path.write_text(
        "format: desk-webhooks/v1\nhooks:\n"
        "  sd:\n    preset: remedy\n    secret: env:X\n    step: client.report\n"
        "  sn:\n    preset: servicenow\n    secret: env:X\n    step: client.report\n"
        "    time_field: opened_at\n"
    )
    with pytest.raises(InputError) as error:
        load_webhooks(path)
    text = "\n".join(str(p) for p in error.value.problems)
    assert "hooks.sd.preset" in text and "unknown preset 'remedy'" in text and "jira, servicenow" in text
    path.write_text(path.read_text().replace("remedy", "jira"))
    hooks = load_webhooks(path)
    assert hooks["sd"].match == {"issue.fields.summary": "{correlation}"}
    assert (hooks["sn"].time_field, hooks["sn"].by_field, hooks["sn"].naive_utc) == (
        "opened_at",
        "caller_id",
        False,
    )
