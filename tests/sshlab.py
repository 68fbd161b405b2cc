"""Pytest fixtures and helpers for tests against real sshd lab hosts in network namespaces.

Use from a test module with ``from tests.sshlab import ssh_lab, ssh_environment`` (fixtures
are found by name once imported) or from conftest.py with ``pytest_plugins``. The lab uses
its own prefix and address octet (``bcdt``, 127.78.x.x) so it never collides with a
``bcdrill lab`` started by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.faults.base import ResolvedTarget
from engine.lab.hosts import LabHost, hosts_down, hosts_up
from engine.model.types import Environment, TargetBinding
from engine.testing import wait_until
from engine.transports.connections import Transports

# Parallel test sessions on one machine each set their own (4 characters, an unused octet).
PREFIX = os.environ.get("BCDRILL_TEST_SSH_PREFIX", "bcdt")
OCTET = int(os.environ.get("BCDRILL_TEST_SSH_OCTET", "78"))


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("SSH lab tests need root (network namespaces, veths, sshd)")


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LabHost]]:
    """Two lab hosts (``app1``, ``app2``) for the whole session, removed at the end."""
    _require_root()
    state = tmp_path_factory.mktemp("sshlab")
    hosts = hosts_up(state, 2, PREFIX, octet=OCTET)
    for host in hosts:
        add_foreign_rules(host)
    try:
        yield hosts
    finally:
        hosts_down(state, PREFIX)


def add_foreign_rules(host: LabHost) -> None:
    """Rules nobody in bcdrill owns: faults must leave them exactly as they are."""
    in_namespace(host, "iptables", "-N", "FOREIGN")
    in_namespace(host, "iptables", "-A", "FOREIGN", "-j", "RETURN")
    in_namespace(host, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "FOREIGN")
    in_namespace(host, "iptables", "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "DROP")


def lab_environment(hosts: list[LabHost], **host_overrides: object) -> Environment:
    """An environment with the lab hosts and one ``web<N>`` target per host."""
    return Environment(
        name="sshlab",
        kind="test",
        client="lab",
        docker=None,
        hosts={h.name: h.ssh_host(**host_overrides) for h in hosts},
        targets={
            f"web{i}": TargetBinding(name=f"web{i}", kind="host", refs=(h.name,))
            for i, h in enumerate(hosts, start=1)
        },
        participants=(),
        urls={},
    )


@pytest.fixture(scope="session")
def ssh_environment(ssh_lab: list[LabHost]) -> Environment:
    """The lab hosts as an :class:`~engine.model.types.Environment`."""
    return lab_environment(ssh_lab)


@pytest.fixture
def ssh_transports(ssh_environment: Environment) -> Iterator[Transports]:
    """Fresh connections per test, closed afterwards."""
    transports = Transports(ssh_environment)
    try:
        yield transports
    finally:
        transports.close()


def target_of(host: LabHost) -> ResolvedTarget:
    """The resolved target a fault action gets for ``host``."""
    return ResolvedTarget(name=host.name, kind="host", ref=host.name, label=f"root@{host.address}")


# ---------------------------------------------------------------- observing from outside


def in_namespace(host: LabHost, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside the host's namespace from the machine (not through SSH)."""
    return subprocess.run(
        ["ip", "netns", "exec", host.namespace, *argv],
        capture_output=True,
        text=True,
        check=check,
        timeout=30,
    )


def iptables_rules(host: LabHost) -> list[str]:
    """``iptables-save`` without comments and counters."""
    out = in_namespace(host, "iptables-save").stdout
    lines = [ln for ln in out.splitlines() if not ln.startswith("#")]
    return [re.sub(r"\[\d+:\d+\]", "[-]", ln) for ln in lines]


def namespace_processes(host: LabHost) -> list[str]:
    """Command lines of every process in the host's namespace, sorted."""
    out = subprocess.run(
        ["ip", "netns", "pids", host.namespace], capture_output=True, text=True, check=True
    ).stdout
    lines = []
    for pid in out.split():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        line = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if line and not line.startswith("sshd: root"):  # the observer's own SSH sessions
            lines.append(line)
    return sorted(lines)


def file_listing(root: Path) -> dict[str, tuple[int, int, str]]:
    """``path -> (mode, mtime_ns, sha256)`` for every file under ``root`` (symlinks: target)."""
    listing: dict[str, tuple[int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            listing[rel] = (0, 0, os.readlink(path))
        elif path.is_file():
            st = path.stat()
            listing[rel] = (
                st.st_mode,
                st.st_mtime_ns,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
    return listing


def snapshot(host: LabHost) -> dict[str, object]:
    """Everything a host fault may touch, observed from outside the host."""
    return {
        "iptables": iptables_rules(host),
        "qdisc": in_namespace(host, "tc", "qdisc", "show").stdout,
        "files": {d: file_listing(host.root / d) for d in ("www", "data", "share")},
        "processes": namespace_processes(host),
        "tmp": sorted(p.name for p in Path("/tmp").glob(f"bcdrill-*{host.name}*")),
    }


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """True once ``predicate`` holds, False when ``timeout`` seconds pass first."""
    try:
        return bool(wait_until("a condition", predicate, timeout, interval))
    except TimeoutError:
        return False
