"""The run journal: append-only, hash-chained, tamper-evident, tolerant of a torn last line."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.errors import JournalError, JournalTamperedError
from engine.record.journal import (
    GENESIS,
    JOURNAL_NAME,
    Journal,
    _digest,
    read_journal,
    set_aside_torn_tail,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / JOURNAL_NAME


def write_three(path: Path, clock: FakeClock | None = None) -> list[dict[str, Any]]:
    clock = clock or FakeClock()
    journal = Journal(path, clock)
    records = [journal.append("run.started", run_id="r1")]
    clock.advance(1.5)
    records.append(journal.append("fault.intent", fault="stop-web", target={"ref": "abc"}))
    clock.advance(0.25)
    records.append(journal.append("run.ended", outcome="passed"))
    journal.close()
    return records


def test_records_are_chained_and_timed(path: Path) -> None:
    records = write_three(path)
    assert [r["seq"] for r in records] == [0, 1, 2]
    assert [r["type"] for r in records] == ["run.started", "fault.intent", "run.ended"]
    assert [r["t"] for r in records] == [0.0, 1.5, 1.75]
    assert records[0]["at"] == "2026-01-01T00:00:00.000Z"
    assert records[2]["at"] == "2026-01-01T00:00:01.750Z"
    assert records[0]["prev"] == GENESIS
    assert records[1]["prev"] == records[0]["hash"]
    assert records[2]["prev"] == records[1]["hash"]
    assert all(r["hash"] == _digest(r) for r in records)
    assert records[1]["data"] == {"fault": "stop-web", "target": {"ref": "abc"}}


def test_read_back_verifies_everything(path: Path) -> None:
    written = write_three(path)
    contents = read_journal(path)
    assert list(contents.records) == written
    assert (contents.torn_tail, contents.warnings) == (False, ())
    assert [r["seq"] for r in contents.of_type("fault.intent", "run.ended")] == [1, 2]


def test_file_is_private_and_one_line_per_record(path: Path) -> None:
    write_three(path)
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["hash"] for line in lines)


def test_reopening_continues_the_chain(path: Path) -> None:
    first = write_three(path)
    journal = Journal(path, FakeClock())
    record = journal.append("step.recorded", step="msp.ack")
    journal.close()
    assert (record["seq"], record["prev"]) == (3, first[-1]["hash"])
    assert len(read_journal(path).records) == 4


def rewrite_line(path: Path, number: int, change: Any) -> None:
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[number - 1])
    change(record)
    lines[number - 1] = json.dumps(record, sort_keys=True) + "\n"
    path.write_text("".join(lines))


def test_an_edited_record_is_named_by_its_line(path: Path) -> None:
    write_three(path)
    rewrite_line(path, 2, lambda r: r["data"].update(fault="something-else"))
    with pytest.raises(JournalTamperedError) as caught:
        read_journal(path)
    assert str(caught.value) == f"{path}:2: record seq 1 was modified (hash mismatch)"


def test_a_rehashed_edit_breaks_the_chain_at_the_next_line(path: Path) -> None:
    write_three(path)

    def forge(record: dict[str, Any]) -> None:
        record["data"]["outcome"] = "forged"
        record["hash"] = _digest(record)

    rewrite_line(path, 2, forge)
    with pytest.raises(JournalTamperedError) as caught:
        read_journal(path)
    assert str(caught.value) == f"{path}:3: record seq 2 breaks the hash chain"


def test_a_deleted_record_is_detected(path: Path) -> None:
    write_three(path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[2])
    with pytest.raises(JournalTamperedError) as caught:
        read_journal(path)
    assert str(caught.value) == f"{path}:2: record seq 2 breaks the hash chain"


def test_reordered_records_are_detected(path: Path) -> None:
    write_three(path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[1] + lines[0] + lines[2])
    with pytest.raises(JournalTamperedError, match=r":1: record seq 1 breaks the hash chain"):
        read_journal(path)


def test_garbage_in_the_middle_is_named(path: Path) -> None:
    write_three(path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "not json\n" + lines[1])
    with pytest.raises(JournalTamperedError) as caught:
        read_journal(path)
    assert str(caught.value).startswith(f"{path}:2: not a JSON record (")
    path.write_text(lines[0] + "[1, 2]\n")
    with pytest.raises(JournalTamperedError, match=r":2: not a JSON object"):
        read_journal(path)


def test_a_torn_last_line_is_tolerated_and_reported(path: Path) -> None:
    written = write_three(path)
    with path.open("ab") as stream:
        stream.write(b'{"seq": 3, "type": "fault.app')  # the crash hit mid-write
    contents = read_journal(path)
    assert list(contents.records) == written
    assert contents.torn_tail is True
    assert contents.warnings == (f"{path}:4: torn last record ignored (crash mid-write)",)


def test_reopening_over_a_torn_tail_sets_it_aside_and_keeps_the_chain(path: Path) -> None:
    written = write_three(path)
    torn = b'{"seq": 3, "type": "fault.app'
    with path.open("ab") as stream:
        stream.write(torn)
    journal = Journal(path, FakeClock())
    journal.append("recover.started", open_faults=[])
    journal.close()
    contents = read_journal(path)
    assert contents.torn_tail is False and contents.warnings == ()
    assert list(contents.records[:3]) == written
    repaired, started = contents.records[3:]
    assert repaired["type"] == "journal.tail_repaired"
    side = path.with_name(f"{JOURNAL_NAME}.torn-3")
    assert repaired["data"] == {
        "side_file": side.name,
        "bytes": len(torn),
        "sha256": hashlib.sha256(torn).hexdigest(),
    }
    assert side.read_bytes() == torn  # the evidence is kept
    assert started["type"] == "recover.started" and started["prev"] == repaired["hash"]


def test_a_second_torn_tail_gets_its_own_side_file(path: Path) -> None:
    write_three(path)
    for fragment in (b'{"seq": 3', b'{"seq": 4, "ty'):
        with path.open("ab") as stream:
            stream.write(fragment)
        Journal(path, FakeClock()).close()
    assert path.with_name(f"{JOURNAL_NAME}.torn-3").read_bytes() == b'{"seq": 3'
    assert path.with_name(f"{JOURNAL_NAME}.torn-4").read_bytes() == b'{"seq": 4, "ty'
    contents = read_journal(path)
    assert [r["type"] for r in contents.records][3:] == ["journal.tail_repaired"] * 2
    assert not contents.torn_tail


def test_set_aside_leaves_a_clean_journal_alone(path: Path) -> None:
    write_three(path)
    before = path.read_bytes()
    assert set_aside_torn_tail(path, 3) is None
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [JOURNAL_NAME]


def test_an_empty_journal_reads_as_no_records(path: Path) -> None:
    path.write_bytes(b"")
    contents = read_journal(path)
    assert (contents.records, contents.torn_tail) == ((), False)


def test_missing_journal_is_a_journal_error(path: Path) -> None:
    with pytest.raises(JournalError, match="cannot read journal"):
        read_journal(path)


def test_opening_over_a_tampered_journal_refuses(path: Path) -> None:
    write_three(path)
    rewrite_line(path, 1, lambda r: r.update(type="run.forged"))
    with pytest.raises(JournalTamperedError, match=r":1: record seq 0 was modified"):
        Journal(path, FakeClock())


def test_listeners_see_each_record_after_it_is_on_disk(path: Path) -> None:
    journal = Journal(path, FakeClock())
    seen: list[tuple[int, int]] = []

    def listener(record: dict[str, Any]) -> None:
        seen.append((record["seq"], len(path.read_text().splitlines())))

    journal.subscribe(listener)
    journal.append("run.started")
    journal.append("run.ended")
    journal.close()
    assert seen == [(0, 1), (1, 2)]


def test_appends_from_many_threads_keep_one_chain(path: Path) -> None:
    journal = Journal(path, FakeClock())

    _append_in_threads(journal, "probe.changed", threads=4, each=25)
    journal.close()
    records = read_journal(path).records
    assert [r["seq"] for r in records] == list(range(100))


def test_concurrent_appends_share_fsyncs_and_each_returns_only_once_its_record_is_durable(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: every append returns after an fsync that began once its record was written;
    threads appending at once need fewer fsyncs than records."""
    durable: list[int] = []  # file sizes covered by completed fsyncs
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        covered = os.fstat(fd).st_size  # what this fsync makes durable: what is written now
        real_fsync(fd)
        threading.Event().wait(0.002)  # a disk that takes its time, so appends pile up
        durable.append(covered)

    monkeypatch.setattr("engine.record.journal.os.fsync", slow_fsync)
    journal = Journal(path, FakeClock())
    late: list[int] = []

    def listener(record: dict[str, Any]) -> None:  # called as append returns
        if record["hash"].encode() not in path.read_bytes()[: max(durable, default=0)]:
            late.append(record["seq"])

    journal.subscribe(listener)
    _append_in_threads(journal, "fault.intent", threads=16, each=10)
    journal.close()
    assert [r["seq"] for r in read_journal(path).records] == list(range(160))
    assert late == [], "an append returned before its record was durable"
    assert len(durable) < 160, "every record waited for an fsync of its own"


def test_unwritable_location_is_a_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(tmp_path / "missing-dir" / JOURNAL_NAME, FakeClock())


def test_non_ascii_data_round_trips(path: Path) -> None:
    journal = Journal(path, FakeClock())
    journal.append("step.recorded", by="Zoë 张伟")
    journal.close()
    assert read_journal(path).records[0]["data"] == {"by": "Zoë 张伟"}
    assert os.path.getsize(path) > 0


def _append_in_threads(journal: Journal, kind: str, threads: int, each: int) -> None:
    """``threads`` threads append ``each`` records of ``kind`` at once; wait for them all."""

    def burst(n: int) -> None:
        for i in range(each):
            journal.append(kind, worker=n, i=i)

    workers = [threading.Thread(target=burst, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
