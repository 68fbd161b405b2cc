"""SSH host faults at the wire's speed: capture, dead-man arming and inject in one round trip.

Real sshd lab hosts; the transport's ``run`` is counted, nothing is faked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InjectionError
from engine.faults.target_clock import offset_of
from engine.lab.hosts import LabHost
from engine.transports.connections import Transports
from engine.transports.ssh import SshTransport
from tests.sshlab import (  # noqa: F401 - fixtures are found by name
    in_namespace,
    ssh_environment,
    ssh_lab,
    ssh_transports,
    wait_for,
)
from tests.test_host_faults import deadman_processes, make, tcp_refused

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
    ssh_transports.ssh(host.name).run(["true"])
    counted.clear()
    fault = make("host.command", host, {"inject": ["true"], "revert": ["true"]}, fault_id="rt3")
    prior = fault.capture(ssh_transports)
    fault.inject(ssh_transports, prior)
    try:
        assert len(counted) <= 2, counted  # at most a read of the prior state, then one script
        assert not any("readlink /proc/1/ns/net" in " ".join(c) for c in counted[:-1])
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
