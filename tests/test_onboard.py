"""``bcdrill env init|keyscan|check``: onboarding a client's staging systems.

The SSH tests use real sshd lab hosts in network namespaces (``ssh_lab``).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.errors import InputError
from engine.lab.hosts import LabHost, hosts_down, hosts_up
from engine.onboard import environment_skeleton, parse_host_port
from engine.spec.loader import load_environment, validate_file
from engine.testing import wait_until
from tests.conftest import run_cli

PIN = re.compile(r'^host_key: "(?P<pin>[a-z0-9-]+ [A-Za-z0-9+/=]+)"$', re.MULTILINE)


# ---------------------------------------------------------------- pure


def test_the_skeleton_validates_as_it_stands(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(environment_skeleton("acme-staging", "Acme GmbH"))
    assert validate_file(path) == ("environment/v1", ())
    environment = load_environment(path)
    assert environment.name == "acme-staging" and environment.client == "Acme GmbH"
    assert environment.hosts["app1"].sudo and "web" in environment.hosts["app1"].services


def test_the_skeleton_refuses_a_bad_name() -> None:
    with pytest.raises(InputError, match="'Acme Staging'"):
        environment_skeleton("Acme Staging", "Acme")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5", ("10.0.0.5", 22)),
        ("app1.example:2222", ("app1.example", 2222)),
        ("[::1]:2200", ("::1", 2200)),
    ],
)
def test_host_and_port_are_parsed(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["host:0", "host:99999", "host:ssh", "-oProxyCommand=x", ""])
def test_bad_host_and_port_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_host_port(text)


def test_env_init_writes_a_file_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "client.yaml"
    first = run_cli("env", "init", "--name", "acme", "--client", "Acme", "--out", str(target))
    assert first.returncode == 0, first.stderr
    assert run_cli("validate", str(target)).returncode == 0
    again = run_cli("env", "init", "--out", str(target))
    assert again.returncode == 2 and "not overwriting" in again.stderr


# ---------------------------------------------------------------- against a real sshd


def _write_env(tmp_path: Path, host: LabHost, **entry: Any) -> Path:
    data = {
        "format": "environment/v1",
        "name": "onboard",
        "kind": "test",
        "client": "Lab",
        "ssh_hosts": {host.name: {**host.environment_entry(), **entry}},
        "targets": {"web": {"hosts": [host.name]}},
        "urls": {"site": host.http_url},
    }
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def own_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LabHost]]:
    """Two lab hosts of this module's own (keys are what is scanned: no other test touches them)."""
    state = tmp_path_factory.mktemp("onboard-hosts")
    hosts = hosts_up(state, 2, "bcdk", octet=76)
    try:
        yield hosts
    finally:
        hosts_down(state, "bcdk")


def _answering(host: LabHost) -> LabHost:
    """Wait (bounded) until the host's sshd accepts connections: a fault an earlier test of the
    session put on the shared lab host may still be wearing off."""

    def accepts() -> bool:
        try:
            socket.create_connection((host.address, host.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    wait_until(f"sshd of {host.name}", accepts, 20, 0.1)
    return host


@pytest.mark.ssh
def test_keyscan_prints_the_pin_that_validate_and_check_accept(
    own_hosts: list[LabHost], tmp_path: Path
) -> None:
    host = _answering(own_hosts[0])
    scan = run_cli("env", "keyscan", f"{host.address}:{host.port}")
    assert scan.returncode == 0, scan.stderr
    assert "Not verified" in scan.stderr and "SHA256:" in scan.stderr
    match = PIN.search(scan.stdout)
    assert match, scan.stdout
    assert match["pin"] == host.host_key  # the key the lab generated for this sshd
    env = _write_env(tmp_path, host, host_key=match["pin"])
    validated = run_cli("validate", str(env))
    assert validated.returncode == 0, validated.stderr
    checked = run_cli("env", "check", str(env))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for expected in ("host key", "verified", "logged in as root", "service web", "running", "HTTP 200"):
        assert expected in checked.stdout, checked.stdout


@pytest.mark.ssh
def test_keyscan_with_a_wrong_expected_fingerprint_prints_no_pin(own_hosts: list[LabHost]) -> None:
    host = own_hosts[0]
    scan = run_cli("env", "keyscan", f"{host.address}:{host.port}", "--expect", "SHA256:" + "A" * 43)
    assert scan.returncode == 4
    assert "host_key" not in scan.stdout and "refusing" in scan.stderr


@pytest.mark.ssh
def test_keyscan_with_the_right_fingerprint_confirms_it(own_hosts: list[LabHost]) -> None:
    _answering(own_hosts[0])
    from engine.transports.ssh import parse_host_key

    host = own_hosts[0]
    fingerprint = str(parse_host_key(host.host_key).fingerprint)
    scan = run_cli("env", "keyscan", f"{host.address}:{host.port}", "--expect", fingerprint)
    assert scan.returncode == 0, scan.stderr
    assert "matches the expected fingerprint" in scan.stderr
    assert PIN.search(scan.stdout)


@pytest.mark.ssh
def test_check_refuses_a_changed_host_key_and_an_unreachable_url(
    own_hosts: list[LabHost], tmp_path: Path
) -> None:
    host, other = own_hosts[0], own_hosts[1]
    env = _write_env(tmp_path, host, host_key=other.host_key)  # another host's key: as if it changed
    data = yaml.safe_load(env.read_text())
    data["urls"]["gone"] = "http://127.0.0.1:9/"
    env.write_text(yaml.safe_dump(data))
    checked = run_cli("env", "check", str(env))
    assert checked.returncode == 4
    assert "mismatch" in checked.stdout and "refused before authentication" in checked.stdout
    assert "ConnectionRefusedError" in checked.stdout
    assert "Traceback" not in checked.stderr


def test_keyscan_of_a_closed_port_fails_cleanly() -> None:
    scan = run_cli("env", "keyscan", "127.0.0.1:9", "--timeout", "2")
    assert scan.returncode == 4
    assert "TCP connect failed" in scan.stderr and "Traceback" not in scan.stderr


def test_validate_refuses_a_pin_that_is_not_a_public_key(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    pin = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbd" + "0" * 43  # a paste that lost characters
    text = environment_skeleton("acme", "Acme").replace(
        "    known_hosts: ~/.ssh/known_hosts\n", f'    host_key: "{pin}"\n'
    )
    path.write_text(text)
    kind, problems = validate_file(path)
    assert kind == "environment/v1" and len(problems) == 1
    assert problems[0].field == "ssh_hosts.app1.host_key" and "cannot be parsed" in problems[0].message
    assert problems[0].line == next(
        i for i, t in enumerate(text.splitlines(), 1) if t.startswith("    host_key:")
    )
