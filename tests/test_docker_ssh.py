"""Docker over SSH: ``docker.url: ssh://USER@HOST`` through bcdrill's own verified SSH connection.

The local daemon's socket is reached through a lab sshd in a network namespace (the namespace
shares this machine's filesystem, so ``docker system dial-stdio`` on the lab host talks to the
same daemon); a fault injects and reverts through it, and a changed host key is refused before
authentication — no Docker call gets through.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from engine.errors import InputError, TransportError
from engine.faults.base import ResolvedTarget
from engine.lab import site
from engine.lab.hosts import LabHost
from engine.model.types import DockerEndpoint, Environment, SshHost, TargetBinding
from engine.plugins import FAULTS, resolve_parts
from engine.transports.connections import Transports
from engine.transports.docker_ssh import ssh_docker_host
from engine.transports.ssh import HostKeyRejected

LAB = os.environ.get("BCDRILL_TEST_LAB", "ci")
SUBJECT = f"bcdrill-{LAB}-ssh-docker-subject"


def _host(name: str, address: str = "10.0.0.5", port: int = 22, user: str = "drill") -> SshHost:
    return SshHost(name, address, port, user, None, False, "ssh-ed25519 AAAA", None, False)


def test_the_url_names_an_ssh_host_by_name_or_address() -> None:
    hosts = {"docker1": _host("docker1"), "app1": _host("app1", "10.0.0.6", 2222)}
    assert ssh_docker_host("ssh://drill@docker1", hosts).name == "docker1"
    assert ssh_docker_host("ssh://drill@10.0.0.6:2222", hosts).name == "app1"
    with pytest.raises(InputError, match="no ssh_hosts entry named or addressed 'docker9'"):
        ssh_docker_host("ssh://drill@docker9", hosts)
    with pytest.raises(InputError, match=r"user 'root' differs from ssh_hosts\.docker1\.user 'drill'"):
        ssh_docker_host("ssh://root@docker1", hosts)


def _environment(host: LabHost, **host_overrides: Any) -> Environment:
    return Environment(
        name="ssh-docker",
        kind="test",
        client="lab",
        docker=DockerEndpoint(url=f"ssh://root@{host.name}", timeout_s=10.0),
        hosts={host.name: host.ssh_host(**host_overrides)},
        targets={"web": TargetBinding("web", "container", (SUBJECT,))},
        participants=(),
        urls={},
    )


@pytest.fixture(scope="module")
def subject() -> Iterator[Any]:
    client = docker.from_env()
    site.ensure_image(client)
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(SUBJECT).remove(force=True)
    container = client.containers.run(
        site.IMAGE, ["sleep", "3600"], name=SUBJECT, detach=True, labels={site.LABEL: f"{LAB}-ssh-docker"}
    )
    yield container
    container.remove(force=True)
    client.close()


@pytest.mark.docker
@pytest.mark.ssh
def test_a_fault_injects_and_reverts_through_the_ssh_tunnel(ssh_lab: list[LabHost], subject: Any) -> None:
    transports = Transports(_environment(ssh_lab[0]))
    try:
        remote = transports.docker.container(SUBJECT)  # through SSH: the same daemon, seen remotely
        assert remote.id == subject.id and remote.status == "running"
        tunnel = transports.docker.tunnel
        assert tunnel is not None
        socket_path = Path(tunnel.local_url.removeprefix("unix://"))
        assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700  # private to this process
        fault = FAULTS.get("docker.stop")(
            "stop-web", ResolvedTarget("web", "container", subject.id, SUBJECT), {}
        )
        prior = fault.capture(transports)
        fault.inject(transports, prior)
        subject.reload()
        assert subject.status == "exited"
        fault.revert(transports, prior)
        assert fault.is_reverted(transports, prior)
        subject.reload()
        assert subject.status == "running"
    finally:
        transports.close()
    assert not socket_path.exists()


@pytest.mark.docker
@pytest.mark.ssh
def test_a_changed_host_key_is_refused_before_any_docker_call(ssh_lab: list[LabHost], subject: Any) -> None:
    host, other = ssh_lab
    transports = Transports(_environment(host, host_key=other.host_key))
    try:
        with pytest.raises(HostKeyRejected, match="refused before authentication"):
            transports.docker.container(SUBJECT)
        assert transports.docker.tunnel is not None
        with pytest.raises(TransportError, match="not started"):
            transports.docker.tunnel.local_url  # noqa: B018 - nothing listens for the SDK
    finally:
        transports.close()
    subject.reload()
    assert subject.status == "running"


def test_validate_refuses_an_ssh_docker_url_without_its_host_entry(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    env = tmp_path / "env.yaml"
    env.write_text(
        "format: environment/v1\nname: acme\nkind: staging\nclient: Acme\n"
        "docker: {url: 'ssh://drill@docker1'}\n"
        "targets: {web: {containers: [shop-web]}}\n"
    )
    result = run_cli("validate", str(env))
    assert result.returncode == 2
    assert f"{env}:5:" in result.stderr
    assert (
        "docker.url: docker url 'ssh://drill@docker1': no ssh_hosts entry named or addressed 'docker1'"
        in (result.stderr)
    )


DRILL = """\
format: playbook/v1
id: ssh-docker-stop
title: Container on a Docker host reached over SSH stops
summary: The whole drill path (preflight, inject, observe, revert, verify) through the SSH tunnel.
severity: medium
targets: [web]
probes:
  - {id: web, kind: container, target: web, interval: 100ms, timeout: 2s}
steady_state: [web]
faults:
  - {id: stop-web, action: docker.stop, target: web, at: 0s, duration: 1s, restore: engine,
     params: {timeout: 0}}
response:
  msp:
    - {id: restored, title: Container runs again, within: 30s, record: {probe: web, state: up}}
objectives: {rto: 30s}
safety: {max_duration: 1m}
"""


@pytest.mark.docker
@pytest.mark.ssh
def test_a_whole_drill_runs_through_the_ssh_tunnel(
    ssh_lab: list[LabHost], subject: Any, tmp_path: Path
) -> None:
    from engine.record.journal import read_journal
    from engine.record.records import RecordType
    from engine.record.runstore import create_run_dir, new_run_id
    from engine.run.runner import DrillRun, RunOptions
    from engine.spec.loader import load_playbook

    path = tmp_path / "drill.yaml"
    path.write_text(DRILL)
    playbook = load_playbook(path)
    run_dir = create_run_dir(new_run_id(playbook.id), tmp_path / "runs")
    parts = resolve_parts("auto", desk=False)
    result = DrillRun(
        playbook, _environment(ssh_lab[0]), run_dir, RunOptions(responders="auto"), parts
    ).execute()
    assert result.outcome == "passed", result.reason
    journal = read_journal(run_dir / "journal.jsonl")
    assert [r["data"]["fault"] for r in journal.of_type(RecordType.FAULT_APPLIED)] == ["stop-web"]
    reverted = list(journal.of_type(RecordType.FAULT_REVERTED))
    assert len(reverted) == 1 and reverted[0]["data"]["verified"] is True
    downs = [r for r in journal.of_type(RecordType.PROBE_CHANGED) if r["data"]["state"] == "down"]
    assert downs, "the container probe, also through the tunnel, saw the outage"
    subject.reload()
    assert subject.status == "running"
