"""Signed evidence: MSP keys, journal.sig, `bcdrill verify`, the sponsor's copy of the head hash."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from engine.model.types import Participant
from engine.record.journal import JOURNAL_NAME, _digest, read_journal
from engine.record.records import RecordType
from engine.record.signing import SIG_NAME, init_key, keys_dir, load_signing_key
from engine.run.evidence import seal_run
from reports.debrief_writer import write_debrief
from reports.testing import ScriptedRun, run_started, step

STEPS = (
    step("msp", "acknowledge", 120, title="Acknowledge the alert"),
    step("client", "report", 300, title="Report through the service desk"),
)
BCDRILL = [sys.executable, "-c", "from engine.cli import main; main()"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BCDRILL_RUNS", raising=False)
    monkeypatch.delenv("BCDRILL_SIGNING_KEY", raising=False)
    return tmp_path / "home"


def bcdrill(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BCDRILL, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def signed_run(runs: Path, run_id: str, run_class: str = "drill", abort: bool = False) -> Path:
    """A scripted run, debriefed and signed with the active key, as the engine ends one."""
    key = load_signing_key()
    assert key is not None
    data = run_started(run_id=run_id, steps=STEPS, run_class=run_class)
    data["signing_key"] = key.fingerprint
    run = ScriptedRun(runs / run_id, start=datetime(2026, 3, 2, 9, tzinfo=UTC))
    run.record(RecordType.RUN_STARTED, **data).record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(70).step("msp.acknowledge", by="alex")
    if abort:
        run.at(80).record(RecordType.RUN_ABORTED, reason="stop word: real incident", by="ops")
    else:
        run.at(200).step("client.report", by="priya")
    run.at(300).revert("stop-web").at(301).probe("web", "up").at(310).end()
    debrief = write_debrief(run.run_dir)
    seal_run(run.run_dir, key, debrief)
    return run.run_dir


def rechain_with_moved_ack(path: Path, step_key: str, earlier_s: float) -> int:
    """Move one ack earlier and recompute every hash after it, as a forger would. Returns its seq."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    moved = next(r for r in records if r["type"] == "step.recorded" and r["data"]["step"] == step_key)
    moved["t"] = round(moved["t"] - earlier_s, 6)
    prev = "0" * 64
    for record in records:
        record["prev"] = prev
        record["hash"] = _digest(record)
        prev = record["hash"]
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return int(moved["seq"])


def test_keys_init_keeps_the_private_key_private(home: Path) -> None:
    result = bcdrill("keys", "init")
    assert result.returncode == 0, result.stderr
    fp = result.stdout.split()[3]
    assert fp.startswith("ed25519:")
    private = next(keys_dir().glob("*.key"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir().stat().st_mode) == 0o700
    assert "PRIVATE" not in result.stdout + result.stderr
    shown = bcdrill("keys", "show")
    assert (shown.returncode, shown.stdout.strip()) == (0, fp)


def test_verify_passes_on_a_fresh_run_and_names_the_moved_ack_of_a_rechained_journal(
    tmp_path: Path, home: Path
) -> None:
    init_key()
    runs = tmp_path / "runs"
    run_dir = signed_run(runs, "20260302T090000Z-web-down-0001")
    ok = bcdrill("verify", run_dir.name, "--runs", str(runs))
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout and "drill" in ok.stdout

    seq = rechain_with_moved_ack(run_dir / JOURNAL_NAME, "msp.acknowledge", 15.0)
    read_journal(run_dir / JOURNAL_NAME)  # the re-chained journal passes the hash chain check
    bad = bcdrill("verify", run_dir.name, "--runs", str(runs))
    assert bad.returncode == 4
    assert f"record seq {seq} (step.recorded) differs from the signed journal" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_an_edited_record_or_signature_fails_verify(tmp_path: Path, home: Path) -> None:
    init_key()
    runs = tmp_path / "runs"
    run_dir = signed_run(runs, "20260302T090000Z-web-down-0002")
    sig = json.loads((run_dir / SIG_NAME).read_text())
    sig["head"]["score"] = 42.0
    (run_dir / SIG_NAME).write_text(json.dumps(sig))
    forged = bcdrill("verify", str(run_dir))
    assert forged.returncode == 4 and "signature does not match" in forged.stderr

    other = signed_run(runs, "20260302T090000Z-web-down-0003")
    lines = (other / JOURNAL_NAME).read_text().splitlines()
    assert '"alex"' in lines[6]
    lines[6] = lines[6].replace('"alex"', '"mallory"')
    (other / JOURNAL_NAME).write_text("\n".join(lines) + "\n")
    edited = bcdrill("verify", str(other))
    assert edited.returncode == 4 and ":7: record seq 6 was modified" in edited.stderr

    unsigned = tmp_path / "runs" / "unsigned"
    ScriptedRun(unsigned).start().at(5).end()
    missing = bcdrill("verify", str(unsigned))
    assert missing.returncode == 4 and "not signed" in missing.stderr


def test_key_rotation_keeps_old_runs_verifiable(tmp_path: Path, home: Path) -> None:
    old_fp, old_pub = init_key()
    runs = tmp_path / "runs"
    old_run = signed_run(runs, "20260302T090000Z-web-down-0004")
    new_fp, _ = init_key()
    assert new_fp != old_fp
    new_run = signed_run(runs, "20260302T090000Z-web-down-0005")
    assert json.loads((new_run / SIG_NAME).read_text())["key_fingerprint"] == new_fp
    assert bcdrill("verify", str(old_run)).returncode == 0
    assert bcdrill("verify", str(new_run)).returncode == 0
    # the client holds only the old public key
    client_copy = tmp_path / "msp.pub"
    shutil.copy(old_pub, client_copy)
    assert bcdrill("verify", str(old_run), "--pubkey", str(client_copy)).returncode == 0
    wrong = bcdrill("verify", str(new_run), "--pubkey", str(client_copy))
    assert wrong.returncode == 4 and f"signed with key {new_fp}" in wrong.stderr


def test_a_key_by_env_reference(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fp, _pub = init_key(tmp_path / "elsewhere")
    pem = next((tmp_path / "elsewhere").glob("*.key")).read_text()
    monkeypatch.setenv("MSP_KEY_PEM", pem)
    monkeypatch.setenv("BCDRILL_SIGNING_KEY", "env:MSP_KEY_PEM")
    key = load_signing_key()
    assert key is not None and key.fingerprint == _fp
    monkeypatch.setenv("BCDRILL_SIGNING_KEY", "inline-secret")
    shown = bcdrill("keys", "show", env={"BCDRILL_SIGNING_KEY": "inline-secret"})
    assert shown.returncode == 2 and "file:PATH or env:VAR" in shown.stderr
    assert "inline-secret" not in shown.stderr


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Receiver.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_the_sponsor_gets_the_head_hash_of_an_official_drill_only(
    tmp_path: Path, home: Path, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_key()
    monkeypatch.setenv("SPONSOR_URL", receiver)
    people = (
        Participant("Alex Moreau", "msp", "on-call engineer", notify=receiver),
        Participant("Mei Chen", "client", "Sponsor (operations director)", notify="env:SPONSOR_URL"),
    )
    runs = tmp_path / "runs"
    official = signed_run(runs, "20260302T090000Z-web-down-0006")
    rehearsal = signed_run(runs, "20260302T090000Z-web-down-0007", run_class="rehearsal")
    key = load_signing_key()
    debrief = json.loads((official / "debrief.json").read_text())
    head = seal_run(official, key, debrief, people, "Shanghai Bakery")
    seal_run(rehearsal, key, json.loads((rehearsal / "debrief.json").read_text()), people, "Shanghai Bakery")
    assert head is not None
    assert len(_Receiver.received) == 1  # the sponsor only, and only for the official drill
    body = _Receiver.received[0]["message"]
    assert head["last_hash"] in body and official.name in body
    assert debrief["evidence"]["head_hash"] == head["last_hash"]


def test_client_html_and_pdf_show_class_outcome_void_reason_head_and_key(tmp_path: Path, home: Path) -> None:
    fp, _ = init_key()
    runs = tmp_path / "runs"
    run_dir = signed_run(runs, "20260302T090000Z-web-down-0008", abort=True)
    sig = json.loads((run_dir / SIG_NAME).read_text())
    head_hash = sig["head"]["last_hash"]
    html = bcdrill("report", str(run_dir), "-f", "html", "--audience", "client")
    assert html.returncode == 0, html.stderr
    for text in ("Official drill", "VOID", "stop word: real incident", head_hash, fp):
        assert text in html.stdout
    pdf_path = tmp_path / "client.pdf"
    pdf = bcdrill("report", str(run_dir), "-f", "pdf", "--audience", "client", "-o", str(pdf_path))
    assert pdf.returncode == 0, pdf.stderr
    text = subprocess.run(
        ["pdftotext", str(pdf_path), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = "".join(text.split())
    for expected in ("Officialdrill", "VOID", "stopword:realincident", head_hash, fp):
        assert expected in flat


def test_a_debrief_edited_after_signing_fails_verify_and_leaves_the_history(
    tmp_path: Path, home: Path
) -> None:
    """The trend, the dashboard and the client's pages read debrief.json: a better score or a
    smaller outage written into it by hand must not reach them, and `verify` must say so."""
    from reports.debrief_writer import read_summary, summaries

    init_key()
    runs = tmp_path / "runs"
    run_dir = signed_run(runs, "20260302T090000Z-web-down-0004")
    kept = signed_run(runs, "20260302T090000Z-web-down-0005")
    assert bcdrill("verify", str(run_dir)).returncode == 0
    assert read_summary(run_dir) is not None
    path = run_dir / "debrief.json"
    data = json.loads(path.read_text())
    data["impact"]["outage_s"] = 1.0  # not in the signed head: only the debrief's digest covers it
    path.write_text(json.dumps(data, indent=4))
    edited = bcdrill("verify", str(run_dir))
    assert (
        edited.returncode == 4 and "debrief.json: differs from the debrief that was signed" in edited.stderr
    )
    assert read_summary(run_dir) is None
    assert [s.run_id for s in summaries(runs)] == [kept.name]
    data["impact"]["outage_s"] = json.loads((kept / "debrief.json").read_text())["impact"]["outage_s"]
    path.write_text(json.dumps(data, sort_keys=True))  # the same debrief, laid out differently
    assert read_summary(run_dir) is not None and bcdrill("verify", str(run_dir)).returncode == 0


def test_a_run_whose_signature_was_deleted_leaves_the_history(tmp_path: Path, home: Path) -> None:
    """Deleting journal.sig must not turn an edited run into an 'unsigned' one that is shown:
    its first record names the key that was to sign it. An official drill with no signature is
    never part of the record, even one whose first record names no key (made, or forged, to
    look as if made where no key existed); an unsigned rehearsal is still listed."""
    from reports.debrief_writer import read_summary, summaries

    init_key()
    runs = tmp_path / "runs"
    run_dir = signed_run(runs, "20260302T090000Z-web-down-0008")
    (run_dir / SIG_NAME).unlink()
    assert read_summary(run_dir) is None
    assert list(summaries(runs)) == []
    assert bcdrill("verify", str(run_dir)).returncode == 4

    run_id = "20260302T090000Z-web-down-0009"
    unsigned = ScriptedRun(runs / run_id, start=datetime(2026, 3, 2, 9, tzinfo=UTC))
    unsigned.record(RecordType.RUN_STARTED, **run_started(run_id=run_id, steps=STEPS, run_class="drill"))
    unsigned.at(1).probe("web", "up").at(10).inject("stop-web").at(70).step("msp.acknowledge", by="alex")
    unsigned.at(300).revert("stop-web").at(301).probe("web", "up").at(310).end()
    write_debrief(unsigned.run_dir)
    assert list(summaries(runs)) == []  # no key named, yet class drill: not the client's record

    run_id = "20260302T090000Z-web-down-0010"
    rehearsal = ScriptedRun(runs / run_id, start=datetime(2026, 3, 2, 10, tzinfo=UTC))
    rehearsal.record(RecordType.RUN_STARTED, **run_started(run_id=run_id, steps=STEPS, run_class="rehearsal"))
    rehearsal.at(1).probe("web", "up").at(10).inject("stop-web").at(300).revert("stop-web").at(310).end()
    write_debrief(rehearsal.run_dir)
    assert [(s.run_id, s.counts) for s in summaries(runs)] == [(run_id, False)]

    # signed before signatures covered the debrief: its journal is signed, so it stays
    run_id = "20260302T090000Z-web-down-0011"
    older = ScriptedRun(runs / run_id, start=datetime(2026, 3, 2, 11, tzinfo=UTC))
    older.record(RecordType.RUN_STARTED, **run_started(run_id=run_id, steps=STEPS, run_class="drill"))
    older.at(1).probe("web", "up").at(10).inject("stop-web").at(300).revert("stop-web").at(310).end()
    key = load_signing_key()
    assert key is not None
    seal_run(older.run_dir, key, None)
    write_debrief(older.run_dir)
    assert [s.run_id for s in summaries(runs)] == ["20260302T090000Z-web-down-0010", run_id]
