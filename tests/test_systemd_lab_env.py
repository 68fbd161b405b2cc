"""The lab's environment file with the systemd host: pure data, no Docker needed."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.lab.site import _environment_yaml
from engine.lab.systemd_host import SystemdHost


def test_the_systemd_host_gets_its_own_target_but_stays_out_of_the_busybox_hosts_group() -> None:
    sys1 = SystemdHost("sys1", "bcdrill-x-sys1", 2222, 8080, Path("/k"), "ssh-ed25519 AAAA")
    env = yaml.safe_load(
        _environment_yaml("x", {}, {"app1": {}, "app2": {}, "sys1": sys1.environment_entry()}, {})
    )
    assert env["targets"]["hosts"] == {"hosts": ["app1", "app2"]}
    assert env["targets"]["sys1"] == {"hosts": ["sys1"]}
    entry = env["ssh_hosts"]["sys1"]
    assert (entry["user"], entry["sudo"], entry["host_key"]) == ("drill", True, "ssh-ed25519 AAAA")
    assert entry["services"]["postgresql"]["stop"] == "systemctl stop postgresql@15-main.service"


def test_a_lab_with_only_the_systemd_host_has_no_empty_hosts_group() -> None:
    sys1 = SystemdHost("sys1", "bcdrill-x-sys1", 2222, 8080, Path("/k"), "ssh-ed25519 AAAA")
    env = yaml.safe_load(_environment_yaml("x", {}, {"sys1": sys1.environment_entry()}, {}))
    assert "hosts" not in env["targets"]
    assert env["targets"]["sys1"] == {"hosts": ["sys1"]}
