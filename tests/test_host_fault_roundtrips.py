"""SSH host faults at the wire's speed: capture, dead-man arming and inject in one round trip.

Real sshd lab hosts; the transport's ``run`` is counted, nothing is faked. After preflight (the
connection open, the target's clock offset read) these faults cost exactly one round trip from
capture to ``fault.applied``: what only the target knows (pids, free space) is read by the inject
script itself and comes back as facts for ``fault.applied``.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.clock import RunClock
from engine.errors import InjectionError
from engine.faults.host_base import facts_in
from engine.faults.target_clock import offset_of
from engine.lab.hosts import LabHost
from engine.model.types import FaultSpec
from engine.record.journal import JOURNAL_NAME, Journal, read_journal
from engine.run.fanout import inject_one
from engine.run.prepared import PreparedFault
from engine.run.reverts import revert_action
from engine.transports.connections import Transports
from engine.transports.ssh import SshTransport
from tests.sshlab import (  # noqa: F401 - fixtures are found by name
    in_namespace,
    snapshot,
    ssh_environment,
    ssh_lab,
    ssh_transports,
    wait_for,
)
from tests.test_host_faults import (
    assert_same,
    deadman_processes,
    http_status,
    make,
    populate_share,
    tcp_refused,
)

pytestmark = pytest.mark.ssh


@pytest.fixture
def counted(ssh_transports: Transports, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every command sent over SSH from now on, in order."""
    sent: list[list[str]] = []
    real = SshTransport.run

    def run(self: SshTransport, argv: list[str], *args: Any, **kwargs: Any) -> Any:
        sent.append(list(argv))
        return real(self, argv, *args, **kwargs)

    monkeypatch.setattr(SshTransport, "run", run)
    yield sent


def test_port_block_is_one_round_trip(
    ssh_lab: list[LabHost], ssh_transports: Transports, counted: list[list[str]]
) -> None:
    host = ssh_lab[1]
    ssh_transports.ssh(host.name).run(["true"])  # connected, as after preflight…
    offset_of(ssh_transports.ssh(host.name))  # …which also read the target's clock offset
    counted.clear()
    fault = make("host.port_block", host, {"port": 80, "deadman_ttl_s": 60}, fault_id="rt1")
    prior = fault.capture(ssh_transports)
    assert counted == [], "capture of an iptables fault needs no round trip"
    assert prior["deadman"]["mode"] == "auto"
    try:
        fault.inject(ssh_transports, prior)
        assert len(counted) == 1, counted
        assert "iptables-restore -w --noflush" in " ".join(counted[0])
        assert wait_for(lambda: tcp_refused(host, 80), 5)
        assert len(deadman_processes(host)) == 1
    finally:
        fault.revert(ssh_transports, prior)
    assert fault.is_reverted(ssh_transports, prior)
    assert deadman_processes(host) == []
    assert "BCD-" not in in_namespace(host, "iptables", "-S").stdout


def test_existing_chains_refuse_the_inject_on_the_target(
    ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    host = ssh_lab[1]
    first = make("host.port_block", host, {"port": 80, "deadman_ttl_s": 60}, fault_id="rt2")
    prior = first.capture(ssh_transports)
    first.inject(ssh_transports, prior)
    try:
        rules_before = in_namespace(host, "iptables", "-S").stdout
        again = make("host.port_block", host, {"port": 80, "deadman_ttl_s": 60}, fault_id="rt2")
        with pytest.raises(InjectionError, match="already armed"):
            again.inject(ssh_transports, again.capture(ssh_transports))
        assert in_namespace(host, "iptables", "-S").stdout == rules_before  # nothing doubled
        assert len(deadman_processes(host)) == 1  # the refused fault armed no second timer
        # the timer is not in the way: iptables-restore itself refuses existing chains, atomically
        (Path(prior["deadman"]["pidfile"])).rename(moved := Path(prior["deadman"]["pidfile"] + ".moved"))
        try:
            with pytest.raises(InjectionError, match=r"Chain already exists.*revert the earlier fault first"):
                again.inject(ssh_transports, again.capture(ssh_transports))
        finally:
            moved.rename(prior["deadman"]["pidfile"])
        assert in_namespace(host, "iptables", "-S").stdout == rules_before
        assert len(deadman_processes(host)) == 1  # the refused inject disarmed its own timer
    finally:
        first.revert(ssh_transports, prior)
    assert first.is_reverted(ssh_transports, prior)
    assert deadman_processes(host) == []


def test_host_command_is_one_round_trip_after_connect(
    ssh_lab: list[LabHost], ssh_transports: Transports, counted: list[list[str]]
) -> None:
    host = ssh_lab[1]
    _connected(ssh_transports, host)
    counted.clear()
    fault = make("host.command", host, {"inject": ["true"], "revert": ["true"]}, fault_id="rt3")
    prior = fault.capture(ssh_transports)
    assert counted == [], "capture of a custom command needs no round trip"
    fault.inject(ssh_transports, prior)
    try:
        assert len(counted) == 1, counted  # the dead-man timer and the command: one script
    finally:
        fault.revert(ssh_transports, prior)
    assert fault.is_reverted(ssh_transports, prior)


def test_host_command_impact_starts_when_the_command_starts_not_when_it_returns(
    ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    host = ssh_lab[1]
    stamp = f"/tmp/bcdrill-started-{host.name}"
    slow = f"date +%s.%N > {stamp}; sleep 0.6"  # the effect begins, then the command dawdles
    fault = make("host.command", host, {"inject": ["sh", "-c", slow], "revert": ["true"]}, fault_id="rt4")
    prior = fault.capture(ssh_transports)
    called = time.time()
    fault.inject(ssh_transports, prior)
    returned = time.time()
    try:
        effective = fault.effective_at(ssh_transports, prior, called, returned)
        started = float(ssh_transports.ssh(host.name).run(["cat", stamp]).stdout)
    finally:
        fault.revert(ssh_transports, prior)
    assert effective is not None and "as the inject command started" in effective.source
    assert abs(effective.unix - started) < 0.05, (effective.unix, started)  # the truth goal
    assert returned - effective.unix > 0.5  # not the moment the command returned


def _connected(transports: Transports, host: LabHost) -> None:
    """As after preflight: the connection is open and the target's clock offset is known."""
    transports.ssh(host.name).run(["true"])
    offset_of(transports.ssh(host.name))


# Faults whose prior state the target alone knew (a capture round trip before): now the inject
# script reads it. Each with the facts its fault.applied record must carry.
ONE_ROUND_TRIP: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = {
    "host.process_kill": ({"service": "web"}, lambda facts: len(facts["pids"]) >= 1),
    "host.disk_fill": ({"path": "data", "size_mb": 1}, lambda facts: facts["fill_bytes"] == 1024 * 1024),
    "host.cpu_burn": ({"workers": 1}, lambda facts: facts == {}),
    "host.service_stop": ({"service": "web"}, lambda facts: facts == {"running": True}),
    "host.encrypt_files": ({"sandbox": "share"}, lambda facts: facts["files"] >= 1),
    "host.throttle": (
        {"rate": "1mbit"},
        lambda facts: facts["root_qdisc"].startswith("qdisc noqueue 0: root"),
    ),
}


@pytest.mark.parametrize("action", sorted(ONE_ROUND_TRIP))
def test_read_on_target_faults_are_one_round_trip_from_capture_to_applied(
    action: str, ssh_lab: list[LabHost], ssh_transports: Transports, counted: list[list[str]], tmp_path: Path
) -> None:
    host = ssh_lab[1]
    populate_share(host)
    _connected(ssh_transports, host)
    before = snapshot(host)
    params, facts_ok = ONE_ROUND_TRIP[action]
    fault = make(action, host, {**params, "deadman_ttl_s": 60}, fault_id=f"rt-{action[5:]}")
    spec = FaultSpec(fault.fault_id, action, "web2", 0.0, None, None, fault.params)
    journal = Journal(tmp_path / JOURNAL_NAME, RunClock())
    counted.clear()
    prepared = PreparedFault(spec, fault)
    outcome = inject_one(prepared, ssh_transports, journal, lambda *_: None, lambda call, _: call())
    sent = list(counted)
    try:
        assert outcome.error == ""
        assert len(sent) == 1, sent  # capture, arming and inject: one script
        records = read_journal(tmp_path / JOURNAL_NAME).records
        assert [r["type"] for r in records] == ["fault.intent", "fault.applied"]
        assert facts_ok(records[1]["data"].get("observed", {})), records[1]["data"]
        assert len(deadman_processes(host)) == 1
    finally:
        assert outcome.prior is not None
        assert revert_action(fault, outcome.prior, ssh_transports, journal)
    assert wait_for(lambda: http_status(host) == "up", 5)
    assert_same(before, snapshot(host))


def test_a_fault_the_target_refuses_changes_nothing_and_arms_no_timer(
    ssh_lab: list[LabHost], ssh_transports: Transports, counted: list[list[str]]
) -> None:
    host = ssh_lab[1]
    _connected(ssh_transports, host)
    fill = make("host.disk_fill", host, {"path": "data", "size_mb": 1}, fault_id="refused")
    leftover = Path(fill.capture(ssh_transports)["file"])
    leftover.write_text("an earlier fill nobody reverted\n")
    try:
        before = snapshot(host)
        refusals = (
            (make("host.process_kill", host, {"name": "no-such-daemon"}), "no running process for process"),
            (fill, "exists already"),
        )
        for fault, reason in refusals:
            counted.clear()
            prior = fault.capture(ssh_transports)
            with pytest.raises(InjectionError, match=reason):
                fault.inject(ssh_transports, prior)
            assert len(counted) == 1, counted
            assert deadman_processes(host) == []
            assert_same(before, snapshot(host))
        assert leftover.read_text() == "an earlier fill nobody reverted\n"
    finally:
        leftover.unlink()


def test_facts_are_read_from_the_inject_output_and_nothing_else() -> None:
    output = "bcdrill.fact pids=12 34\nnoise=1\nbcdrill.fact fill_bytes=5\n1764480000.123\n"
    assert facts_in(output) == {"pids": "12 34", "fill_bytes": "5"}
    assert facts_in("") == {}


def test_a_stopped_service_is_restarted_from_the_hosts_marker_by_a_fresh_engine(
    ssh_lab: list[LabHost], ssh_transports: Transports, ssh_environment: Any, tmp_path: Path
) -> None:
    """What ``bcdrill recover`` does after a crash between ``fault.intent`` and ``fault.applied``:
    a new fault object, the intent's prior state only, and the marker the inject left on the host."""
    host = ssh_lab[1]
    fault = make("host.service_stop", host, {"service": "web", "deadman_ttl_s": 60}, fault_id="marked")
    prior = fault.capture(ssh_transports)
    fault.inject(ssh_transports, prior)
    assert wait_for(lambda: http_status(host) == "refused", 5)
    assert Path(prior["marker"]).read_text() == "running\n"
    fresh = Transports(ssh_environment)
    try:
        recovering = make("host.service_stop", host, {"service": "web"}, fault_id="marked")
        assert not recovering.is_reverted(fresh, prior)  # the marker says it ran: it must run again
        journal = Journal(tmp_path / JOURNAL_NAME, RunClock())
        assert revert_action(recovering, prior, fresh, journal)
        (record,) = read_journal(tmp_path / JOURNAL_NAME).records
        assert record["data"]["verified"] is True
    finally:
        fresh.close()
    assert wait_for(lambda: http_status(host) == "up", 5)
    assert not Path(prior["marker"]).exists()
    assert deadman_processes(host) == []


def test_a_service_that_was_not_running_is_not_stopped_nor_started(
    ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    host = ssh_lab[1]
    ssh = ssh_transports.ssh(host.name)
    web = host.ssh_host().services["web"]
    ssh.run(shlex.split(web["stop"]))
    try:
        assert wait_for(lambda: http_status(host) == "refused", 5)
        fault = make("host.service_stop", host, {"service": "web", "deadman_ttl_s": 60}, fault_id="idle")
        prior = fault.capture(ssh_transports)
        fault.inject(ssh_transports, prior)
        assert fault.applied_facts() == {"running": False}
        assert not Path(prior["marker"]).exists()
        fault.revert(ssh_transports, prior)
        assert fault.is_reverted(ssh_transports, prior)
        assert http_status(host) == "refused", "the revert started a service that was not running before"
        assert deadman_processes(host) == []
    finally:
        ssh.run(shlex.split(web["start"]))
    assert wait_for(lambda: http_status(host) == "up", 5)
