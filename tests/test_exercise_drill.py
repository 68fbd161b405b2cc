"""The evaluated exercise end to end: a real drill on the Docker lab with its people side.

``storefront-exercise`` runs for real (DrillRun, time-scaled): the kick-off alert goes into
a local Alertmanager-style receiver and an apprise ``json://`` endpoint, injects reach the
participants' desk pages, simulated people read them through the desk API and answer
(acks and the decision), a real SMTP e-mail to the drill mailbox records a communication
step, and the debrief shows injects, reactions and the decision with its rationale.
"""

from __future__ import annotations

import json
import smtplib
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from drills.desk.mail_address import drill_mail_address
from drills.desk.mailbox import mailbox_address
from drills.desk.participants import ParticipantStore
from drills.desk.service import desk_url
from drills.desk.webhooks import correlation_code
from engine.plugins import resolve_parts
from engine.record.runstore import create_run_dir, new_run_id
from engine.run.runner import DrillRun, RunOptions, RunResult
from engine.spec.loader import load_environment, load_playbook
from engine.web import free_port
from tests.conftest import REPO
from tests.journal_helpers import records
from tests.test_injects import Receiver

pytestmark = [pytest.mark.docker]

PLAYBOOK = REPO / "playbooks" / "storefront-exercise.yaml"
SCALE = 0.005  # the slowest target, 40 min, becomes 12 s


def _poll(what: str, check: Callable[[], Any], timeout_s: float = 30.0, every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_storefront_exercise_runs_with_alert_injects_decision_and_mailbox(
    lab_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    monkeypatch.setenv("BCDRILL_ALERT_WEBHOOK", f"http://127.0.0.1:{receiver.port}/alertmanager")
    monkeypatch.setenv("BCDRILL_ALERT_APPRISE", f"json://127.0.0.1:{receiver.port}/apprise")
    environment = load_environment(lab_env)
    playbook = load_playbook(PLAYBOOK)
    run_dir = create_run_dir(new_run_id(playbook.id), tmp_path / "runs")
    drill = DrillRun(
        playbook,
        environment,
        run_dir,
        RunOptions(responders="simulate", desk=f"127.0.0.1:{free_port()}", time_scale=SCALE, seed=7),
        resolve_parts("simulate", desk=True, mailbox=bool(playbook.exercise.mailbox)),
    )
    (priya,) = ParticipantStore(environment.client).issue(
        [p for p in environment.participants if p.name == "Priya Shah"], "http://x", reissue=True
    )
    result: list[RunResult] = []
    thread = threading.Thread(target=lambda: result.append(drill.execute()), daemon=True)
    thread.start()
    try:
        # impact: the client's shop manager e-mails the director, quoting the drill code and
        # Bcc-ing her personal drill address (shown on her desk page)
        _poll("impact", lambda: any(r["type"] == "fault.applied" for r in records(run_dir)))
        host, port = _poll("the drill mailbox", lambda: mailbox_address(run_dir))
        priya_mail = drill_mail_address(run_dir, "Priya Shah")
        assert priya_mail
        message = EmailMessage()
        message["From"], message["To"] = "Priya Shah <priya@bakery.example>", "tom@bakery.example"
        message["Bcc"] = priya_mail
        message["Subject"] = f"[{correlation_code(run_dir.name)}] shop down, taking phone orders"
        message.set_content("Tom, the web shop is down; we take orders by phone. Priya")
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.send_message(message)

        # the customer's call reaches the shop manager's desk, marked as an exercise
        base = _poll("the desk", lambda: desk_url(run_dir))
        headers = {"Authorization": f"Bearer {priya.token}"}

        def inbox() -> list[dict[str, Any]]:
            return list(httpx.get(f"{base}/api/messages", headers=headers).json()["messages"])

        # (read like a person would, not in a tight loop: the desk rate-limits each address)
        calls = _poll(
            "the customer's call",
            lambda: [m for m in inbox() if m["inject"] == "customer-calls"],
            every_s=1.0,
        )
        assert calls[0]["text"].startswith("EXERCISE EXERCISE EXERCISE — Your web shop shows an error")
        thread.join(timeout=120)
    finally:
        receiver.close()
    assert result, "the drill did not finish"
    assert result[0].exit_code in (0, 1), result[0].reason

    journal = records(run_dir)
    sent = [r["data"] for r in journal if r["type"] == "inject.sent"]
    assert {s["channel"] for s in sent if s["inject"] == "alert"} == {"desk", "alertmanager", "apprise"}
    assert {"customer-calls", "backup-nas-errors"} <= {s["inject"] for s in sent}
    assert not [r for r in journal if r["type"] == "inject.failed"]
    paths = {path: body for path, body in receiver.bodies}
    assert paths["/alertmanager"]["alerts"][0]["labels"]["bcdrill_run"] == run_dir.name
    assert "[FIRING] storefront HTTP check failing" in paths["/apprise"]["message"]

    steps = {r["data"]["step"]: r["data"] for r in journal if r["type"] == "step.recorded"}
    mail = steps["client.inform-director"]
    assert mail["source"] == "email" and mail["by"] == "priya@bakery.example"
    assert "subject: [" in mail["note"] and "phone orders" in mail["note"]
    assert priya_mail.split("@")[0] not in json.dumps(journal), "the personal tag is never journaled"
    assert "Tom, the web shop" not in json.dumps(journal), "e-mail bodies are never stored"
    decision = steps["msp.choose-recovery"]
    assert decision["choice"] == "restart-in-place" and decision["source"] == "ack"  # through the desk API
    assert steps["client.report"]["source"] == "ack"

    debrief = json.loads((run_dir / "debrief.json").read_text())
    exercise = debrief["exercise"]
    assert exercise["players"] == "blind"
    (choice,) = exercise["decisions"]
    assert choice["choice_expected"] is True and choice["rationale"]
    call = next(i for i in exercise["injects"] if i["id"] == "customer-calls")
    assert call["expect_step"] == "client.report" and call["reaction_s"] is not None
    markdown = (run_dir / "debrief.md").read_text()
    assert "## Alerts and injects" in markdown and "## Decisions" in markdown
    assert "restart-in-place (as planned)" in markdown
    assert "Alerts and injects" in (run_dir / "debrief.html").read_text()

    # the MSP kept the client updated: status updates at the playbook's cadence until restored
    assert [r for r in journal if r["type"] == "step.update" and r["data"]["step"] == "msp.inform-client"]
    (cadence,) = exercise["cadences"]
    assert cadence["step"] == "msp.inform-client" and cadence["met"] >= 1

    # ENDEX, then the hotwash: every participant answered through the desk, before run.ended
    kinds = [r["type"] for r in journal]
    opened = kinds.index("hotwash.opened")
    assert kinds.index("restore.verified") < opened < kinds.index("run.ended")
    assert "fault.reverted" in kinds[:opened] and "step.recorded" not in kinds[opened:]
    answered = [r["data"] for r in journal if r["type"] == "hotwash.answered"]
    assert sorted(a["by"] for a in answered) == sorted(p.name for p in environment.participants)
    assert all(
        1 <= a["confidence"] <= 5 and a["went_well"].startswith(("simulated", "模拟")) for a in answered
    )
    hotwash = exercise["hotwash"]
    assert len(hotwash["answers"]) == len(answered) and hotwash["confidence"]["msp"] is not None
    assert "## Participants' view (hotwash)" in markdown and "Mean confidence" in markdown
