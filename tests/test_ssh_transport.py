"""The SSH transport against real sshd lab hosts: host keys, argv quoting, deadlines, threads."""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

from engine.errors import CommandTimedOut, SecretError, TransportError
from engine.lab.hosts import LabHost
from engine.model.types import ProbeSpec, SecretRef
from engine.plugins import PROBES
from engine.probes.ssh_command import SshCommandProbe
from engine.transports.connections import Transports
from engine.transports.ssh import HostKeyRejected, SshTransport, UnexpectedExit
from tests.sshlab import (  # noqa: F401 - fixtures are found by name
    in_namespace,
    namespace_processes,
    ssh_environment,
    ssh_lab,
    wait_for,
)

pytestmark = pytest.mark.ssh


def fingerprint_of(pub: Path) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` prints it (an independent computation)."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True)
    return out.stdout.split()[1]


def test_run_returns_a_result(ssh_lab: list[LabHost]) -> None:
    ssh = SshTransport(ssh_lab[0].ssh_host())
    try:
        result = ssh.run(["sh", "-c", "echo out; echo err >&2; exit 0"])
        assert (result.exit_code, result.stdout, result.stderr) == (0, "out\n", "err\n")
        assert result.duration_s < 5
        failed = ssh.run(["sh", "-c", "exit 7"], check=False)
        assert failed.exit_code == 7
        with pytest.raises(UnexpectedExit) as info:
            ssh.run(["false"])
        assert info.value.result.exit_code == 1
        assert isinstance(info.value, TransportError)
    finally:
        ssh.close()


def test_creating_a_transport_does_not_connect(ssh_lab: list[LabHost]) -> None:
    # Nothing listens on port 1: construction succeeds, the first use fails clearly.
    ssh = SshTransport(ssh_lab[0].ssh_host(port=1))
    with pytest.raises(TransportError, match="TCP connect failed"):
        ssh.run(["true"])


def test_hostile_value_is_one_literal_argument(ssh_lab: list[LabHost]) -> None:
    canary = Path(f"/tmp/canary-{secrets.token_hex(6)}")
    value = f"x; touch {canary}; $(touch {canary}) `touch {canary}` ' \" \\"
    ssh = SshTransport(ssh_lab[0].ssh_host())
    try:
        result = ssh.run(["printf", "%s", value])
    finally:
        ssh.close()
    assert result.stdout == value
    assert not canary.exists()


def test_large_output_is_drained_while_waiting(ssh_lab: list[LabHost]) -> None:
    ssh = SshTransport(ssh_lab[0].ssh_host())
    try:
        result = ssh.run(["sh", "-c", "head -c 4000000 /dev/zero | tr '\\0' x; echo done >&2"])
    finally:
        ssh.close()
    assert len(result.stdout) == 4_000_000 and result.stderr == "done\n"


def test_slow_command_times_out_on_the_target_too(ssh_lab: list[LabHost]) -> None:
    host = ssh_lab[0]
    marker = f"sleep {1000 + secrets.randbelow(1000)}"
    ssh = SshTransport(host.ssh_host())
    try:
        started = time.monotonic()
        with pytest.raises(CommandTimedOut) as info:
            ssh.run(marker.split(), timeout=1)
        assert time.monotonic() - started < 3.5
        assert "did not finish within 1" in str(info.value)
    finally:
        ssh.close()
    assert wait_for(lambda: not any(marker in p for p in namespace_processes(host)), 3)


def test_changed_host_key_is_refused_before_authentication(ssh_lab: list[LabHost]) -> None:
    app1, app2 = ssh_lab
    # app2's key pinned for app1, and a client key that does not exist: reaching the
    # authentication step would raise SecretError instead.
    host = app1.ssh_host(host_key=app2.host_key, key=SecretRef("file:/nonexistent/key"))
    with pytest.raises(HostKeyRejected) as info:
        SshTransport(host).connect()
    message = str(info.value)
    assert fingerprint_of(app1.root / "ssh_host_ed25519_key.pub") in message
    assert fingerprint_of(app2.root / "ssh_host_ed25519_key.pub") in message
    assert "app1" in message and "before authentication" in message


def test_known_hosts_is_honoured(ssh_lab: list[LabHost], tmp_path: Path) -> None:
    app1, app2 = ssh_lab
    good = tmp_path / "good"
    good.write_text(f"{app1.address} {app1.host_key}\n")
    wrong = tmp_path / "wrong"
    wrong.write_text(f"{app1.address} {app2.host_key}\n")
    empty = tmp_path / "empty"
    empty.write_text(f"{app2.address} {app2.host_key}\n")

    ok = SshTransport(app1.ssh_host(host_key=None, known_hosts=str(good)))
    assert ok.run(["true"]).ok
    ok.close()
    with pytest.raises(HostKeyRejected, match="mismatch"):
        SshTransport(app1.ssh_host(host_key=None, known_hosts=str(wrong))).connect()
    with pytest.raises(HostKeyRejected, match="not in known_hosts"):
        SshTransport(app1.ssh_host(host_key=None, known_hosts=str(empty))).connect()
    with pytest.raises(TransportError, match="refusing to trust"):
        SshTransport(app1.ssh_host(host_key=None, known_hosts=None)).connect()


def test_key_from_environment_variable(ssh_lab: list[LabHost], monkeypatch: pytest.MonkeyPatch) -> None:
    host = ssh_lab[0]
    monkeypatch.setenv("BCD_TEST_KEY_PATH", str(host.key_path))
    monkeypatch.setenv("BCD_TEST_KEY_TEXT", host.key_path.read_text())
    for var in ("BCD_TEST_KEY_PATH", "BCD_TEST_KEY_TEXT"):
        ssh = SshTransport(host.ssh_host(key=SecretRef(f"env:{var}")))
        assert ssh.run(["true"]).ok
        ssh.close()
    monkeypatch.setenv("BCD_TEST_KEY_TEXT", "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n")
    with pytest.raises(SecretError) as info:
        SshTransport(host.ssh_host(key=SecretRef("env:BCD_TEST_KEY_TEXT"))).connect()
    assert "nope" not in str(info.value)


def test_blackholed_host_returns_by_its_deadlines(ssh_lab: list[LabHost]) -> None:
    host = ssh_lab[1]
    ssh = SshTransport(host.ssh_host(connect_timeout_s=1.0))
    ssh.connect()
    rule = ["INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"]
    in_namespace(host, "iptables", "-I", *rule)
    try:
        started = time.monotonic()
        with pytest.raises(TransportError):
            ssh.run(["true"], timeout=1)
        assert time.monotonic() - started < 1 + 2 + 1.5
        started = time.monotonic()
        with pytest.raises(TransportError, match="timed out"):
            ssh.run(["true"], timeout=1)  # reconnects: the connect deadline applies
        assert time.monotonic() - started < 1 + 1.5
    finally:
        in_namespace(host, "iptables", "-D", *rule)
        ssh.close()
    again = SshTransport(host.ssh_host())
    assert again.run(["true"]).ok
    again.close()


def test_one_connection_shared_by_threads(ssh_lab: list[LabHost]) -> None:
    ssh = SshTransport(ssh_lab[0].ssh_host())
    outputs: list[str] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                outputs.append(ssh.run(["echo", f"{n}-{i}"]).stdout.strip())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    ssh.close()
    assert not errors
    assert sorted(outputs) == sorted(f"{n}-{i}" for n in range(4) for i in range(15))


def test_sudo_wraps_the_timeout_not_the_other_way_round(ssh_lab: list[LabHost]) -> None:
    ssh = SshTransport(ssh_lab[0].ssh_host(sudo=True))
    assert ssh.command_line(["id", "-u"], 5, True) == "sudo -n timeout -k 1 5 id -u"
    assert ssh.command_line(["a b"], 0.5, False) == "timeout -k 1 0.500 'a b'"


def test_ssh_command_probe(ssh_lab: list[LabHost], ssh_environment: object) -> None:
    from engine.model.types import Environment

    assert isinstance(ssh_environment, Environment)
    probe_cls = PROBES.get("ssh.command")
    transports = Transports(ssh_environment)
    marker = ssh_lab[0].root / "www" / "index.html"
    try:
        spec = ProbeSpec("page", "ssh.command", "web1", 1.0, 2.0, {"argv": ["test", "-f", str(marker)]})
        probe = probe_cls(spec, ssh_environment, transports)
        assert probe.check().healthy
        missing = ProbeSpec("gone", "ssh.command", "web1", 1.0, 2.0, {"argv": ["test", "-f", "/nope"]})
        result = probe_cls(missing, ssh_environment, transports).check()
        assert not result.healthy and result.detail.startswith("exit 1")
        on_app2 = ProbeSpec("app2", "ssh.command", "web1", 1.0, 2.0, {"argv": ["hostname"], "host": "app2"})
        probe = probe_cls(on_app2, ssh_environment, transports)
        assert isinstance(probe, SshCommandProbe) and probe.host_name() == "app2"
        assert probe_cls(on_app2, ssh_environment, transports).check().healthy
    finally:
        transports.close()
