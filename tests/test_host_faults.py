"""Host fault actions against real sshd lab hosts: inject, observe from outside, revert, compare."""

from __future__ import annotations

import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InjectionError, InputError
from engine.faults.host_base import HostFault
from engine.lab.hosts import LabHost
from engine.plugins import FAULTS
from engine.transports.connections import Transports
from tests.sshlab import (  # noqa: F401 - fixtures are found by name
    in_namespace,
    namespace_processes,
    snapshot,
    ssh_environment,
    ssh_lab,
    ssh_transports,
    target_of,
    wait_for,
)

pytestmark = pytest.mark.ssh


def http_status(host: LabHost, timeout: float = 1.0) -> str:
    """``up``, ``refused`` or ``timeout``/``error`` for the host's web page, seen from outside."""
    try:
        with urllib.request.urlopen(host.http_url, timeout=timeout) as response:
            return "up" if response.status == 200 else f"http {response.status}"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return "refused"
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            return "timeout"
        return f"error {exc.reason}"
    except TimeoutError:
        return "timeout"
    except ConnectionError as exc:  # reset mid-answer: the service is going down right now
        return f"error {exc}"


def tcp_refused(host: LabHost, port: int) -> bool:
    """True when a TCP connect to ``port`` is actively refused."""
    try:
        with socket.create_connection((host.address, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def populate_share(host: LabHost) -> None:
    """Files the encryption drill works on, including awkward names and a symlink outside."""
    share = host.root / "share"
    (share / "docs").mkdir(exist_ok=True)
    (share / "orders.csv").write_text("id,total\n1,9.99\n")
    (share / "docs" / "name with spaces; rm -rf x.txt").write_text("careful\n")
    (share / "docs" / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (share / "already.locked").write_text("not ours\n")
    link = share / "outside-link"
    if not link.is_symlink():
        link.symlink_to("/etc/hostname")


@dataclass(frozen=True)
class Case:
    """One fault action under test: its params and how the fault shows from outside."""

    action: str
    params: Callable[[LabHost], dict[str, Any]]
    injected: Callable[[LabHost], bool]


def _disk_nearly_full(host: LabHost) -> bool:
    import os

    st = os.statvfs(host.root / "data")
    return st.f_bavail / st.f_blocks <= 0.05


def _files_locked(host: LabHost) -> bool:
    share = host.root / "share"
    return (
        (share / "orders.csv.locked").exists()
        and not (share / "orders.csv").exists()
        and (share / "docs" / "name with spaces; rm -rf x.txt.locked").exists()
        and "id,total" not in (share / "orders.csv.locked").read_text()
        and (share / "already.locked").read_text() == "not ours\n"
        and not (share / "already.locked.locked").exists()
    )


def _burning(host: LabHost) -> bool:
    return sum(p == "sh -c while :; do :; done" for p in namespace_processes(host)) == 2


CASES = [
    Case("host.service_stop", lambda h: {"service": "web"}, lambda h: http_status(h) == "refused"),
    Case("host.process_kill", lambda h: {"service": "web"}, lambda h: http_status(h) == "refused"),
    Case("host.port_block", lambda h: {"port": 80}, lambda h: tcp_refused(h, 80)),
    Case("host.partition", lambda h: {}, lambda h: http_status(h, 0.5) == "timeout"),
    Case(
        "host.throttle",
        lambda h: {"rate": "1mbit"},
        lambda h: "qdisc tbf bcd: dev" in in_namespace(h, "tc", "qdisc", "show").stdout,
    ),
    Case("host.disk_fill", lambda h: {"path": "data", "free_percent": 5}, _disk_nearly_full),
    Case("host.cpu_burn", lambda h: {"workers": 2}, _burning),
    Case("host.encrypt_files", lambda h: {"sandbox": "share"}, _files_locked),
    Case(
        "host.command",
        lambda h: {
            "inject": ["touch", str(h.root / "data" / "marker")],
            "revert": ["rm", "-f", str(h.root / "data" / "marker")],
            "verify": ["test", "!", "-e", str(h.root / "data" / "marker")],
        },
        lambda h: (h.root / "data" / "marker").exists(),
    ),
]


def make(action: str, host: LabHost, params: dict[str, Any], fault_id: str = "f1") -> HostFault:
    """An instance of the registered action, bound to ``host``."""
    cls = FAULTS.get(action)
    fault = cls(fault_id, target_of(host), params)
    assert isinstance(fault, HostFault)
    return fault


def assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    """Compare two snapshots key by key, so a failure shows which part changed."""
    for key in before:
        assert after[key] == before[key], f"{key} changed"


def deadman_processes(host: LabHost) -> list[str]:
    return [p for p in namespace_processes(host) if "bcdrill-deadman" in p]


@pytest.mark.parametrize("case", CASES, ids=[c.action for c in CASES])
def test_inject_observe_revert_restores_everything(
    case: Case, ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    host = ssh_lab[0]
    populate_share(host)
    assert "FOREIGN" in in_namespace(host, "iptables", "-S").stdout  # must stay untouched
    ssh_transports.ssh(host.name).run(["true"])  # its sshd session is part of "before"
    assert http_status(host) == "up"
    before = snapshot(host)

    fault_id = case.action.replace("host.", "t-")
    fault = make(case.action, host, {**case.params(host), "deadman_ttl_s": 60}, fault_id)
    plan = fault.describe()
    assert plan.inject and plan.revert
    assert snapshot(host) == before, "describe() must have no side effects"
    prior = fault.capture(ssh_transports)
    assert snapshot(host) == before, "capture() must have no side effects"

    try:
        fault.inject(ssh_transports, prior)
        assert wait_for(lambda: case.injected(host), 5), f"{case.action} not visible from outside"
        assert len(deadman_processes(host)) == 1, "exactly one dead-man timer while injected"
        assert not fault.is_reverted(ssh_transports, prior)
    finally:
        fault.revert(ssh_transports, prior)
    assert fault.is_reverted(ssh_transports, prior)
    assert wait_for(lambda: http_status(host) == "up", 5)
    assert_same(before, snapshot(host))
    assert deadman_processes(host) == []

    fault.revert(ssh_transports, prior)  # second revert: a no-op
    assert fault.is_reverted(ssh_transports, prior)
    assert_same(before, snapshot(host))


def test_partition_keeps_the_ssh_control_connection(
    ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    host = ssh_lab[0]
    fault = make("host.partition", host, {"deadman_ttl_s": 60}, fault_id="part")
    prior = fault.capture(ssh_transports)
    fault.inject(ssh_transports, prior)
    try:
        assert ssh_transports.ssh(host.name).run(["true"], timeout=3).ok
        assert http_status(host, 0.5) == "timeout"
    finally:
        fault.revert(ssh_transports, prior)
    assert http_status(host) == "up"


def test_port_block_refuses_the_engines_own_ssh_port(
    ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    fault = make("host.port_block", ssh_lab[0], {"port": 22})
    prior = fault.capture(ssh_transports)
    with pytest.raises(InputError, match="SSH port"):
        fault.inject(ssh_transports, prior)
    assert fault.is_reverted(ssh_transports, prior)


def test_throttle_refuses_delay_without_netem(ssh_lab: list[LabHost], ssh_transports: Transports) -> None:
    host = ssh_lab[0]
    before = snapshot(host)
    fault = make("host.throttle", host, {"rate": "1mbit", "delay": "100ms"})
    prior = fault.capture(ssh_transports)
    with pytest.raises(InjectionError, match="need tc netem"):  # this kernel has none (NOTES.md)
        fault.inject(ssh_transports, prior)
    assert snapshot(host) == before


def test_encrypt_refuses_paths_outside_the_sandbox(
    ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    host = ssh_lab[0]
    populate_share(host)
    escape = host.root / "share" / "escape"
    if not escape.is_symlink():
        escape.symlink_to(host.root / "www")
    for subdir in ("../www", "/etc"):  # refused from the playbook alone
        fault = make("host.encrypt_files", host, {"sandbox": "share", "subdir": subdir})
        with pytest.raises(InputError, match="sandbox"):
            fault.capture(ssh_transports)
    # a symlink out of the sandbox only the host can see: its inject script refuses, changing nothing
    before = snapshot(host)
    fault = make("host.encrypt_files", host, {"sandbox": "share", "subdir": "escape"})
    with pytest.raises(InjectionError, match="outside the sandbox"):
        fault.inject(ssh_transports, fault.capture(ssh_transports))
    assert_same(before, snapshot(host))
    escape.unlink()
    assert (host.root / "www" / "index.html").read_text().startswith("<h1>")


def test_hostile_param_reaches_the_target_as_one_literal_argument(
    ssh_lab: list[LabHost], ssh_transports: Transports
) -> None:
    host = ssh_lab[0]
    # The remote shell starts in root's home: an executed "touch canary-…" would land there.
    canary = f"canary-{secrets.token_hex(6)}"
    odd_name = f"x; touch {canary} $(touch {canary}) `touch {canary}`"
    target = host.root / "data" / odd_name
    fault = make(
        "host.command",
        host,
        {"inject": ["touch", str(target)], "revert": ["rm", "-f", str(target)]},
        fault_id="canary",
    )
    prior = fault.capture(ssh_transports)
    fault.inject(ssh_transports, prior)
    assert target.exists(), "the value arrived as one file name"
    fault.revert(ssh_transports, prior)
    assert not target.exists()
    assert not (Path("/root") / canary).exists(), "a shell ran part of the value as a command"
    assert not list((host.root / "data").glob("canary-*"))


def test_deadman_timer_reverts_when_the_engine_vanishes(ssh_lab: list[LabHost], ssh_environment: Any) -> None:
    host = ssh_lab[1]
    before = snapshot(host)
    transports = Transports(ssh_environment)
    fault = make("host.port_block", host, {"port": 80, "deadman_ttl_s": 3}, fault_id="dm")
    prior = fault.capture(transports)
    fault.inject(transports, prior)
    assert tcp_refused(host, 80)
    # The engine disappears: its connection is gone and SSH is blackholed from inside.
    transports.close()
    blackhole = ["iptables", "-I", "INPUT", "1", "-p", "tcp", "--dport", "22", "-j", "DROP"]
    in_namespace(host, *blackhole)
    try:
        started = time.monotonic()
        assert wait_for(lambda: not tcp_refused(host, 80), 10), "the timer did not revert"
        assert 2.0 <= time.monotonic() - started <= 8.0
        assert http_status(host) == "up"
        assert wait_for(lambda: deadman_processes(host) == [], 3)
    finally:
        in_namespace(host, "iptables", "-D", "INPUT", *blackhole[4:])
    after = snapshot(host)
    assert after["iptables"] == before["iptables"]
    assert after["tmp"] == before["tmp"]


def test_normal_revert_leaves_no_timer_behind(ssh_lab: list[LabHost], ssh_transports: Transports) -> None:
    host = ssh_lab[1]
    fault = make("host.command", host, {"inject": ["true"], "revert": ["true"]}, fault_id="nt")
    prior = fault.capture(ssh_transports)
    fault.inject(ssh_transports, prior)
    assert fault.deadman_armed(ssh_transports.ssh(host.name), prior)
    fault.revert(ssh_transports, prior)
    assert not fault.deadman_armed(ssh_transports.ssh(host.name), prior)
    assert deadman_processes(host) == []
    assert not Path(prior["deadman"]["pidfile"]).exists()


def test_every_host_action_is_registered_with_a_valid_name() -> None:
    host_actions = {n for n in FAULTS.names() if n.startswith("host.")}
    assert host_actions == {c.action for c in CASES}
    for name in host_actions:
        cls = FAULTS.get(name)
        assert cls.name == name and cls.target_kind == "host"
        assert "deadman_ttl_s" in cls.params_schema["properties"]
