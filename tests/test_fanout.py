"""engine.run.fanout against real sshd lab hosts: parallel inject, per-host journal, revert on failure."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from engine.clock import RunClock
from engine.model.types import FaultSpec, frozen_mapping
from engine.plugins import FAULTS
from engine.record.journal import JOURNAL_NAME, Journal, read_journal
from engine.run.fanout import FanoutError, connect_parallel, inject_parallel, revert_parallel
from engine.run.prepared import PreparedFault
from engine.transports.connections import Transports
from tests.sshlab import target_of

pytestmark = [pytest.mark.ssh]


def _prepared(host: object, fault_id: str, action: str, params: dict[str, object]) -> PreparedFault:
    spec = FaultSpec(fault_id, action, "hosts", 0.0, None, None, frozen_mapping(params))
    return PreparedFault(spec, FAULTS.get(action)(fault_id, target_of(host), spec.params))  # type: ignore[arg-type]


def _journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / JOURNAL_NAME, RunClock())


def test_inject_parallel_applies_every_host_and_journals_each(
    ssh_lab: list, ssh_transports: Transports, tmp_path: Path
) -> None:
    flags = [Path(tempfile.gettempdir()) / f"bcdrill-fanout-{h.name}-{tmp_path.name}" for h in ssh_lab]
    pfs = [
        _prepared(
            h, f"flag@{h.name}", "host.command", {"inject": ["touch", str(f)], "revert": ["rm", "-f", str(f)]}
        )
        for h, f in zip(ssh_lab, flags, strict=True)
    ]
    journal = _journal(tmp_path)
    tracked: list[str] = []
    connect_parallel(ssh_transports, [h.name for h in ssh_lab])
    result = inject_parallel(
        pfs, ssh_transports, journal, on_intent=lambda pf, _prior: tracked.append(pf.action.fault_id)
    )
    try:
        assert not result.failed
        assert (
            sorted(a.prepared.action.fault_id for a in result.applied)
            == sorted(tracked)
            == sorted(pf.action.fault_id for pf in pfs)
        )
        assert all(f.exists() for f in flags)
        records = read_journal(tmp_path / JOURNAL_NAME).records
        for pf in pfs:
            kinds = [r["type"] for r in records if r["data"].get("fault") == pf.action.fault_id]
            assert kinds == ["fault.intent", "fault.applied"]
        assert result.first_applied_t == min(a.applied_t for a in result.applied)
    finally:
        reverted = revert_parallel([(a.prepared, a.prior) for a in result.applied], ssh_transports, journal)
    assert sorted(reverted) == sorted(pf.action.fault_id for pf in pfs)
    assert not any(f.exists() for f in flags)


def test_partial_failure_reverts_the_hosts_that_succeeded(
    ssh_lab: list, ssh_transports: Transports, tmp_path: Path
) -> None:
    good, bad = ssh_lab[0], ssh_lab[1]
    flag = Path(tempfile.gettempdir()) / f"bcdrill-fanout-partial-{tmp_path.name}"
    pfs = [
        _prepared(
            good,
            "part@ok",
            "host.command",
            {"inject": ["touch", str(flag)], "revert": ["rm", "-f", str(flag)]},
        ),
        _prepared(bad, "part@bad", "host.command", {"inject": ["false"], "revert": ["true"]}),
    ]
    journal = _journal(tmp_path)
    with pytest.raises(FanoutError) as caught:
        inject_parallel(pfs, ssh_transports, journal)
    result = caught.value.result
    assert set(result.failed) == {"part@bad"}
    assert [a.prepared.action.fault_id for a in result.applied] == ["part@ok"]
    assert sorted(result.reverted) == ["part@bad", "part@ok"]
    assert not flag.exists()  # the host that succeeded was reverted
    records = read_journal(tmp_path / JOURNAL_NAME).records
    by_fault = {
        fid: [r["type"] for r in records if r["data"].get("fault") == fid] for fid in ("part@ok", "part@bad")
    }
    assert by_fault["part@ok"] == ["fault.intent", "fault.applied", "fault.reverted"]
    assert by_fault["part@bad"] == ["fault.intent", "fault.inject_failed", "fault.reverted"]
    # no dead-man timer is left on either host
    for pf in pfs:
        assert not Path(f"/tmp/{pf.action.deadman_name}.pid").exists()  # type: ignore[attr-defined]
