"""The lab's Samba AD domain controller ``dc1`` and the identity scenario run against it.

Needs Docker and the systemd lab image (built once per machine, see test_systemd_host.py; the
domain is provisioned inside it, so nothing here provisions). The DC gets its own lab name and
network so this module runs alone or beside test_systemd_host.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from engine.lab import domain_controller, samba_ad, systemd_host
from engine.lab.domain_controller import DomainController
from engine.spec.loader import load_environment
from engine.transports.connections import Transports
from tests.conftest import run_cli

pytestmark = [pytest.mark.docker, pytest.mark.systemd]

LAB = os.environ.get("BCDRILL_TEST_LAB", "ci") + "-dc"
SCENARIO = Path(__file__).resolve().parent.parent / "playbooks" / "systemd" / "identity-down-ad.yaml"


@pytest.fixture(scope="session")
def dc_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DomainController, Path]]:
    """The domain controller (from the cached image) and an environment file naming it."""
    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    state = tmp_path_factory.mktemp("dc-lab")
    network = f"bcdrill-{LAB}"
    if not [n for n in client.networks.list(names=[network]) if n.name == network]:
        client.networks.create(network, labels={systemd_host.LABEL: LAB})
    try:
        dc = domain_controller.host_up(client, LAB, network, state)
        env_path = state / "environment.yaml"
        env = {
            "format": "environment/v1",
            "name": LAB,
            "kind": "test",
            "client": "Demo Bakery Ltd",
            "targets": {dc.name: {"hosts": [dc.name]}},
            "ssh_hosts": {dc.name: dc.environment_entry()},
        }
        env_path.write_text(yaml.safe_dump(env, sort_keys=False))
        yield dc, env_path
    finally:
        domain_controller.host_down(client, LAB)
        for net in client.networks.list(names=[network]):
            if net.name == network:
                net.remove()
        client.close()


def _on_dc(dc: DomainController, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside the DC through ``docker exec`` (the test's own channel, not SSH)."""
    return subprocess.run(
        ["docker", "exec", dc.container, *argv], check=check, capture_output=True, text=True, timeout=30
    )


def test_the_dc_signs_the_staff_user_in_over_ldaps_and_kerberos_and_runs_nothing_else(
    dc_lab: tuple[DomainController, Path],
) -> None:
    dc, env = dc_lab
    connections = Transports(load_environment(env))
    try:
        ssh = connections.ssh(dc.name)
        assert ssh.run(["systemctl", "is-active", samba_ad.UNIT], check=False).stdout.strip() == "active"
        for unit in ("nginx.service", "postgresql@15-main.service", "smbd.service", "winbind.service"):
            assert ssh.run(["systemctl", "is-active", unit], check=False).stdout.strip() != "active", unit
        bind = ["ldapsearch", "-x", "-H", f"ldaps://{samba_ad.FQDN}", "-D", samba_ad.STAFF_PRINCIPAL]
        bind += ["-b", "DC=bakery,DC=lab", "-LLL", "(sAMAccountName=staff)", "dn"]
        # Readable by the drill user itself, without sudo: the probe needs no root for it.
        found = ssh.run([*bind, "-y", samba_ad.PASSWORD_FILE], sudo=False)
        assert "CN=Staff Member,CN=Users,DC=bakery,DC=lab" in found.stdout
        wrong = ssh.run([*bind, "-w", "not-the-password"], sudo=False, check=False)
        assert wrong.exit_code == 49, wrong.stderr  # invalid credentials: the bind is really checked
        kinit = f"KRB5CCNAME=MEMORY: kinit {samba_ad.STAFF_PRINCIPAL} < {samba_ad.PASSWORD_FILE}"
        assert ssh.run(["sh", "-c", kinit], sudo=False, check=False).exit_code == 0
    finally:
        connections.close()
    mode = _on_dc(dc, "stat", "-c", "%U %a", samba_ad.PASSWORD_FILE).stdout.split()
    assert mode == ["drill", "400"]


def _step(records: list[dict[str, Any]], key: str) -> dict[str, Any]:
    (record,) = [r for r in records if r["type"] == "step.recorded" and r["data"]["step"] == key]
    return record


def _changed(record: dict[str, Any], probe: str) -> bool:
    return bool(record["type"] == "probe.changed" and record["data"]["probe"] == probe)


def _journal(runs: Path) -> list[dict[str, Any]]:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]


@pytest.mark.prefect
def test_the_identity_scenario_runs_against_the_domain_controller(
    dc_lab: tuple[DomainController, Path], prefect_api: str, tmp_path: Path
) -> None:
    dc, env = dc_lab
    # Samba signs users in again 6-8 s after its restart on a quiet machine, ~27 s under a load
    # of 13: ×0.006 keeps the playbook's 90-minute safety bound (32 s) above that.
    result = run_cli(
        "run", str(SCENARIO), "--env", str(env), "--runs", str(tmp_path), "--responders", "simulate",
        "--seed", "7", "--time-scale", "0.006", timeout=150,
    )  # fmt: skip
    assert result.returncode in (0, 1), (result.stdout + result.stderr)[-3000:]
    records = _journal(tmp_path)
    (intent,) = [r["t"] for r in records if r["type"] == "fault.intent"]
    restart = _step(records, "msp.restart")["t"]
    for probe in ("sign-in", "kerberos"):  # LDAP and Kerberos saw staff locked out, then back
        seen = [(r["data"]["observed_t"], r["data"]["state"]) for r in records if _changed(r, probe)]
        # Samba may time a probe out once more while it starts (KDC up, not answering yet).
        assert seen[0][1] == "up" and seen[0][0] < intent, (probe, seen)
        assert seen[1][1] == "down" and seen[1][0] > intent, (probe, seen)
        assert seen[-1][1] == "up" and seen[-1][0] > restart, (probe, seen)
    restored = _step(records, "msp.restored")
    assert restored["data"]["by"] == "probe:sign-in" and restored["t"] > restart
    assert [r["data"]["verified"] for r in records if r["type"] == "fault.reverted"] == [True]
    assert _on_dc(dc, "systemctl", "is-active", samba_ad.UNIT).stdout.strip() == "active"
    kinit = f"KRB5CCNAME=MEMORY: kinit {samba_ad.STAFF_PRINCIPAL} < {samba_ad.PASSWORD_FILE}"
    assert _on_dc(dc, "sh", "-c", kinit).returncode == 0
    debrief = json.loads((next(tmp_path.iterdir()) / "debrief.json").read_text())
    assert debrief["objectives"]["rto"]["actual_s"] is not None
    # The staff password is read on the host only: nothing the run wrote holds it.
    password = _on_dc(dc, "cat", samba_ad.PASSWORD_FILE).stdout
    assert len(password) >= 20
    written = [p for p in next(tmp_path.iterdir()).rglob("*") if p.is_file()]
    assert written and not [p for p in written if password.encode() in p.read_bytes()]
    assert password not in result.stdout + result.stderr
