"""Offline cross-checks: a playbook or drill plan that does not bind to its environment is
refused with located errors (``validate --env``, ``validate PLAN``, ``schedule``); ``plan``
works without reaching the hosts and shows the real commands with "not verified" marks.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = REPO / "playbooks" / "app-host-web-stop.yaml"  # targets app1, url app1-web, service web
PLAN_EXAMPLE = REPO / "playbooks" / "plans" / "demo-bakery-2027.yaml"


def _host_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _environment(tmp_path: Path, port: int = 9, **changes: Any) -> Path:
    """A staging environment where app1 is a systemd host with nginx as ``web``."""
    data: dict[str, Any] = {
        "format": "environment/v1",
        "name": "acme-staging",
        "kind": "staging",
        "client": "Acme",
        "ssh_hosts": {
            "app1": {
                "address": "127.0.0.1",
                "port": port,
                "user": "drill",
                "key": "env:ACME_KEY",
                "host_key": _host_key(),
                "sudo": True,
                "connect_timeout": "2s",
                "services": {
                    "web": {
                        "start": "systemctl start nginx",
                        "stop": "systemctl stop nginx",
                        "status": "systemctl is-active --quiet nginx",
                    }
                },
            }
        },
        "targets": {"app1": {"hosts": ["app1"]}},
        "urls": {"app1-web": "http://127.0.0.1:9/"},
        "participants": [
            {"name": "Alex", "party": "msp"},
            {"name": "Priya", "party": "client"},
        ],
    }
    data.update(changes)
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


# ---------------------------------------------------------------- validate PLAYBOOK --env ENV


def test_a_binding_playbook_validates_against_its_environment(tmp_path: Path) -> None:
    result = run_cli("validate", str(PLAYBOOK), "--env", str(_environment(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "valid playbook/v1" in result.stdout


def test_an_unbound_target_is_refused_with_its_location(tmp_path: Path) -> None:
    env = _environment(tmp_path, targets={"app2": {"hosts": ["app1"]}})
    result = run_cli("validate", str(PLAYBOOK), "--env", str(env))
    assert result.returncode == 2
    line = _line_of(PLAYBOOK, "targets: [app1]")
    assert f"{PLAYBOOK}:{line}:" in result.stderr
    assert (
        "targets[0]: target 'app1' is not bound in environment 'acme-staging' (bound: app2)" in result.stderr
    )


def test_an_undeclared_service_and_an_unknown_url_name_are_refused(tmp_path: Path) -> None:
    env = _environment(tmp_path, urls={"storefront": "http://127.0.0.1:9/"})
    data = yaml.safe_load(env.read_text())
    data["ssh_hosts"]["app1"]["services"] = {"db": data["ssh_hosts"]["app1"]["services"]["web"]}
    env.write_text(yaml.safe_dump(data))
    result = run_cli("validate", str(PLAYBOOK), "--env", str(env))
    assert result.returncode == 2
    assert f"{PLAYBOOK}:{_line_of(PLAYBOOK, 'params: {service: web}')}:" in result.stderr
    assert "faults[0].params: host 'app1' declares no service 'web' (declared: db)" in result.stderr
    assert f"{PLAYBOOK}:{_line_of(PLAYBOOK, 'params: {url: app1-web')}:" in result.stderr
    assert "probes[0].params.url: 'app1-web' is neither an http(s) URL nor a name" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_party_without_participants_is_refused(tmp_path: Path) -> None:
    env = _environment(tmp_path, participants=[{"name": "Alex", "party": "msp"}])
    result = run_cli("validate", str(PLAYBOOK), "--env", str(env))
    assert result.returncode == 2
    assert (
        "party 'client' records steps by hand but environment 'acme-staging' lists no client" in result.stderr
    )


# ---------------------------------------------------------------- drill plans: validate and schedule


def _plan(tmp_path: Path, env: Path) -> Path:
    """The example plan, pointing at ``env`` and the app-host playbook."""
    data = yaml.safe_load(PLAN_EXAMPLE.read_text())
    data.pop("incident_check")
    data.update(environment=env.name, playbooks=[str(PLAYBOOK)])
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_plan_whose_playbook_does_not_bind_is_refused_by_validate_and_schedule(tmp_path: Path) -> None:
    env = _environment(tmp_path, targets={"web": {"hosts": ["app1"]}})
    plan = _plan(tmp_path, env)
    validated = run_cli("validate", str(plan))
    assert validated.returncode == 2
    assert f"{plan}:{_line_of(plan, 'app-host-web-stop.yaml')}:" in validated.stderr
    assert "does not bind to environment 'acme-staging'" in validated.stderr
    assert "targets[0]: target 'app1' is not bound" in validated.stderr
    scheduled = run_cli("schedule", str(plan), "--dry-run")
    assert scheduled.returncode == 2
    assert "target 'app1' is not bound" in scheduled.stderr and "Traceback" not in scheduled.stderr


def test_a_binding_plan_validates(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _environment(tmp_path))
    validated = run_cli("validate", str(plan))
    assert validated.returncode == 0, validated.stderr


def test_the_example_plan_binds() -> None:
    assert run_cli("validate", str(PLAN_EXAMPLE)).returncode == 0


# ---------------------------------------------------------------- plan without reaching the hosts


@pytest.fixture
def not_ssh() -> Iterator[int]:
    """A loopback port that answers like a web server, not an SSH server."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("listener", ["closed", "not-ssh"])
def test_plan_against_unreachable_hosts_prints_the_plan_marked_not_verified(
    tmp_path: Path, not_ssh: int, listener: str
) -> None:
    env = _environment(tmp_path, port=9 if listener == "closed" else not_ssh)
    result = run_cli("plan", str(PLAYBOOK), "--env", str(env))
    assert result.returncode == 4
    assert "Traceback" not in result.stderr + result.stdout
    assert "stop-web on app1 (drill@127.0.0.1:" in result.stdout
    assert "[not verified:" in result.stdout
    # the real declared commands, not placeholders
    assert "inject: on drill@127.0.0.1" in result.stdout and "systemctl stop nginx" in result.stdout
    assert "systemctl is-active --quiet nginx >/dev/null 2>&1 || systemctl start nginx" in result.stdout
    assert "<stop of" not in result.stdout
    assert "probe order-entry" in result.stdout
    assert "not verified: 1 target(s) could not be reached" in result.stdout


def test_plan_refuses_a_non_binding_playbook_before_connecting(tmp_path: Path) -> None:
    env = _environment(tmp_path, targets={"web": {"hosts": ["app1"]}})
    result = run_cli("plan", str(PLAYBOOK), "--env", str(env))
    assert result.returncode == 2
    assert "target 'app1' is not bound" in result.stderr


def test_bad_input_copied_playbook_keeps_its_own_location(tmp_path: Path) -> None:
    copy = tmp_path / "pb.yaml"
    shutil.copy(PLAYBOOK, copy)
    env = _environment(tmp_path, targets={"web": {"hosts": ["app1"]}})
    result = run_cli("validate", str(copy), "--env", str(env))
    assert result.returncode == 2 and f"{copy}:" in result.stderr
