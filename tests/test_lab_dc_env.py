"""The lab's environment file with the domain controller: pure data, no Docker needed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from engine.lab.domain_controller import DomainController
from engine.lab.site import _environment_yaml
from engine.lab.systemd_host import SystemdHost
from tests.conftest import run_cli

PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "systemd" / "identity-down-ad.yaml"


def _lab_environment(host_key: str = "ssh-ed25519 BBBB", busybox: bool = True) -> str:
    sys1 = SystemdHost("sys1", "bcdrill-x-sys1", 2222, 8080, Path("/k"), host_key)
    dc1 = DomainController("dc1", "bcdrill-x-dc1", 2223, Path("/k"), host_key)
    hosts = {"sys1": sys1.environment_entry(), "dc1": dc1.environment_entry()}
    if busybox:
        hosts["app1"] = {}
    return _environment_yaml("x", {"sys1-web": sys1.http_url}, hosts, {})


def test_the_dc_gets_its_own_target_and_declares_the_identity_service() -> None:
    env = yaml.safe_load(_lab_environment())
    assert env["targets"]["hosts"] == {"hosts": ["app1"]}
    assert env["targets"]["dc1"] == {"hosts": ["dc1"]}
    entry = env["ssh_hosts"]["dc1"]
    assert (entry["user"], entry["sudo"], entry["host_key"]) == ("drill", True, "ssh-ed25519 BBBB")
    assert entry["services"] == {
        "identity": {
            "start": "systemctl start samba-ad-dc.service",
            "stop": "systemctl stop samba-ad-dc.service",
            "status": "systemctl is-active --quiet samba-ad-dc.service",
        }
    }


def test_the_identity_scenario_binds_to_the_lab_environment_and_names_no_password(tmp_path: Path) -> None:
    env = tmp_path / "environment.yaml"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    host_key = " ".join((tmp_path / "k.pub").read_text().split()[:2])
    env.write_text(_lab_environment(host_key, busybox=False))
    result = run_cli("validate", str(PLAYBOOK), "--env", str(env))
    assert result.returncode == 0, result.stdout + result.stderr
    probes = yaml.safe_load(PLAYBOOK.read_text())["probes"]
    argvs = [" ".join(probe["params"]["argv"]) for probe in probes]
    assert all("/etc/bcdrill/staff.password" in argv for argv in argvs)
    assert not [argv for argv in argvs if " -w " in argv or "--password" in argv]


SYSTEMD_PLAYBOOKS = sorted(
    p for p in PLAYBOOK.parent.glob("*.yaml") if not p.name.endswith(".translations.yaml")
)


@pytest.mark.parametrize("playbook", SYSTEMD_PLAYBOOKS, ids=lambda p: p.stem)
def test_every_systemd_playbook_binds_to_the_systemd_lab(playbook: Path, tmp_path: Path) -> None:
    """What ``validate --env`` promises for the systemd lab: every target, service, URL and
    sandbox each playbook names resolves (the runs themselves are in test_systemd_host.py and
    test_domain_controller.py)."""
    env = tmp_path / "environment.yaml"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    env.write_text(_lab_environment(" ".join((tmp_path / "k.pub").read_text().split()[:2]), busybox=False))
    result = run_cli("validate", str(playbook), "--env", str(env))
    assert result.returncode == 0, result.stdout + result.stderr
