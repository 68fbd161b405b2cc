"""Lab hosts: up is idempotent, status tells the truth, down removes everything, 100 hosts work."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.errors import PreflightError
from engine.lab.hosts import hosts_down, hosts_status, hosts_up, lab_hosts
from engine.transports.ssh import SshTransport

pytestmark = pytest.mark.ssh


def namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{prefix}-")]


def links(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if f" {prefix}h" in line]


def sshd_processes(state: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(state) in line and "grep" not in line]


def test_up_is_idempotent_and_down_removes_everything(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    state.mkdir()
    first = hosts_up(state, 3, "bcdu", octet=79)
    try:
        assert [h.name for h in first] == ["app1", "app2", "app3"]
        for host in first:
            assert ipaddress.ip_address(host.address) in ipaddress.ip_network("127.0.0.0/8")
            with urllib.request.urlopen(host.http_url, timeout=2) as response:
                assert f"<h1>{host.name}</h1>" in response.read().decode()
        sshd_pid = (first[0].root / "run" / "sshd.pid").read_text()
        again = hosts_up(state, 3, "bcdu", octet=79)
        assert again == first, "a second up keeps keys, addresses and commands"
        assert (first[0].root / "run" / "sshd.pid").read_text() == sshd_pid
        assert lab_hosts(state, "bcdu") == first
        assert all(s.namespace and s.sshd and s.web for s in hosts_status(state, "bcdu"))

        entry = first[0].environment_entry()
        assert entry["key"] == f"file:{first[0].key_path}" and entry["sudo"] is False
        assert entry["host_key"].startswith("ssh-ed25519 ")
        assert set(entry["services"]["web"]) >= {"start", "stop", "status", "paths"}
        assert entry["services"]["web"]["paths"]["data"] == str(first[0].root / "data")
        assert os.path.ismount(first[0].root / "data")
    finally:
        hosts_down(state, "bcdu")
    assert namespaces("bcdu") == []
    assert links("bcdu") == []
    assert sshd_processes(state) == []
    assert not (state / "hosts").exists() and not (state / "client").exists()
    assert hosts_status(state, "bcdu") == []


def test_a_broken_host_is_rebuilt_by_the_next_up(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    state.mkdir()
    (host,) = hosts_up(state, 1, "bcdv", octet=80)
    try:
        old_sshd = int((host.root / "run" / "sshd.pid").read_text())
        subprocess.run(["ip", "netns", "del", host.namespace], check=True)
        assert not hosts_status(state, "bcdv")[0].namespace
        (rebuilt,) = hosts_up(state, 1, "bcdv", octet=80)
        assert rebuilt.host_key == host.host_key, "the pinned key survives a rebuild"
        assert not Path(f"/proc/{old_sshd}").exists() or _zombie(old_sshd), "the old sshd was left running"
        ssh = SshTransport(rebuilt.ssh_host())
        assert ssh.run(["true"]).ok
        ssh.close()
    finally:
        hosts_down(state, "bcdv")
    assert namespaces("bcdv") == [] and links("bcdv") == []


def _zombie(pid: int) -> bool:
    """Ended but not reaped (PID 1 here does not reap)."""
    return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="prefix"):
        hosts_up(tmp_path, 1, "Bad-Prefix")
    with pytest.raises(PreflightError, match="count"):
        hosts_up(tmp_path, 0, "bcdw")


def test_one_hundred_hosts_fan_out(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    state.mkdir()
    started = time.monotonic()
    hosts = hosts_up(state, 100, "bcdx", octet=81)
    try:
        up_s = time.monotonic() - started

        def check(host_index: int) -> str:
            ssh = SshTransport(hosts[host_index].ssh_host())
            try:
                return ssh.run(["cat", "/proc/sys/net/ipv4/conf/all/route_localnet"]).stdout.strip()
            finally:
                ssh.close()

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(check, range(100)))
        fan_out_s = time.monotonic() - started
        print(f"100 lab hosts: up {up_s:.1f}s, connect+command on all {fan_out_s:.2f}s")
        assert answers == ["1"] * 100
    finally:
        hosts_down(state, "bcdx")
    assert namespaces("bcdx") == [] and links("bcdx") == []
