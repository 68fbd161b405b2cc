"""The realistic lab host: Debian 12, systemd as PID 1, sshd, nginx, PostgreSQL.

Needs Docker and ``mmdebstrap`` (the first session builds the image, ~1 min; later sessions
reuse it). Faults go through SSH as the sudo user with the pinned host key; what they do is
observed from outside (nginx's published port, ``pg_isready`` through ``docker exec``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from engine.faults.base import ResolvedTarget
from engine.faults.host_base import HostFault
from engine.lab import share_backup, systemd_host
from engine.lab.systemd_host import SystemdHost
from engine.model.types import Environment
from engine.onboard import canary, share_canary
from engine.plugins import FAULTS
from engine.probes.data import parse_records
from engine.probes.file_canary import CANARY_FILE
from engine.spec.loader import load_environment
from engine.transports.connections import Transports
from engine.transports.ssh import HostKeyRejected
from tests.conftest import run_cli

pytestmark = [pytest.mark.docker, pytest.mark.systemd]

LAB = os.environ.get("BCDRILL_TEST_LAB", "ci") + "-sd"
TARGET = ResolvedTarget(name="db", kind="host", ref=systemd_host.HOST_NAME, label="sys1")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def systemd_lab(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SystemdHost, Path]]:
    """The systemd host (image built once, then reused) and an environment file naming it."""
    state = tmp_path_factory.mktemp("systemd-lab")
    network = f"bcdrill-{LAB}"
    if not docker_client.networks.list(names=[network]):
        docker_client.networks.create(network, labels={systemd_host.LABEL: LAB})
    try:
        host = systemd_host.host_up(docker_client, LAB, network, state)
        env_path = state / "environment.yaml"
        env_path.write_text(
            yaml.safe_dump(
                {
                    "format": "environment/v1",
                    "name": LAB,
                    "kind": "test",
                    "client": "Demo Bakery Ltd",
                    "targets": {"db": {"hosts": [host.name]}, host.name: {"hosts": [host.name]}},
                    "ssh_hosts": {host.name: host.environment_entry()},
                    "urls": {"sys1-web": host.http_url},
                },
                sort_keys=False,
            )
        )
        yield host, env_path
    finally:
        systemd_host.host_down(docker_client, LAB)
        for net in docker_client.networks.list(names=[network]):
            net.remove()


@pytest.fixture
def environment(systemd_lab: tuple[SystemdHost, Path]) -> Environment:
    return load_environment(systemd_lab[1])


@pytest.fixture
def transports(environment: Environment) -> Iterator[Transports]:
    connections = Transports(environment)
    try:
        yield connections
    finally:
        connections.close()


def nginx_up(host: SystemdHost) -> bool:
    """True when nginx's page answers on the published port."""
    try:
        with urllib.request.urlopen(host.http_url, timeout=2.0) as response:
            return bool(response.status == 200 and b"bcdrill lab host" in response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def postgres_up(host: SystemdHost) -> bool:
    """True when PostgreSQL accepts connections (``pg_isready`` inside the host)."""
    done = subprocess.run(
        ["docker", "exec", host.container, "pg_isready", "-q", "-t", "2"], check=False, timeout=20
    )
    return done.returncode == 0


CHECKS: dict[str, Callable[[SystemdHost], bool]] = {"nginx": nginx_up, "postgresql": postgres_up}


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def service_stop(params: dict[str, Any]) -> HostFault:
    fault = FAULTS.get("host.service_stop")("f1", TARGET, params)
    assert isinstance(fault, HostFault)
    return fault


def test_the_host_runs_systemd_and_is_reached_as_a_sudo_user(transports: Transports) -> None:
    ssh = transports.ssh(systemd_host.HOST_NAME)
    assert ssh.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    assert ssh.run(["systemctl", "is-system-running"], check=False).stdout.strip() in ("running", "degraded")
    assert ssh.run(["id", "-u"]).stdout.strip() == "0"  # through sudo -n
    assert ssh.run(["id", "-un"], sudo=False).stdout.strip() == systemd_host.USER
    for unit in systemd_host.SERVICES.values():
        assert ssh.run(["systemctl", "is-active", unit], check=False).stdout.strip() == "active"


def test_a_changed_host_key_is_refused(systemd_lab: tuple[SystemdHost, Path]) -> None:
    entry = yaml.safe_load(systemd_lab[1].read_text())
    other = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(systemd_lab[1].parent / "other")],
        check=True,
    )
    assert other.returncode == 0
    pub = (systemd_lab[1].parent / "other.pub").read_text().split()
    entry["ssh_hosts"][systemd_host.HOST_NAME]["host_key"] = f"{pub[0]} {pub[1]}"
    wrong = systemd_lab[1].parent / "wrong-key.yaml"
    wrong.write_text(yaml.safe_dump(entry))
    connections = Transports(load_environment(wrong))
    try:
        with pytest.raises(HostKeyRejected, match="host key mismatch"):
            connections.ssh(systemd_host.HOST_NAME).run(["true"])
    finally:
        connections.close()


@pytest.mark.parametrize("service", ["nginx", "postgresql"])
def test_service_stop_stops_the_real_unit_and_revert_starts_it(
    service: str, systemd_lab: tuple[SystemdHost, Path], transports: Transports
) -> None:
    host, check = systemd_lab[0], CHECKS[service]
    assert check(host), f"{service} is not up before the fault"
    fault = service_stop({"service": service})
    prior = fault.capture(transports)
    assert prior["deadman"]["mode"] == "auto"  # the target picks systemd-run where systemd runs
    fault.inject(transports, prior)
    assert fault.applied_facts() == {"running": True}  # seen running by the inject script itself
    try:
        assert wait_for(lambda: not check(host), 10), f"{service} still answers after the fault"
        assert fault.deadman_armed(transports.ssh(host.name), prior)
        assert _systemd_timers(transports, host), "the dead-man timer is a systemd timer, not the fallback"
    finally:
        fault.revert(transports, prior)
    assert wait_for(lambda: check(host), 20), f"{service} did not come back after the revert"
    assert fault.is_reverted(transports, prior)


def _systemd_timers(transports: Transports, host: SystemdHost) -> str:
    listed = ["systemctl", "list-timers", "--all", "--no-legend", "bcdrill-deadman-*"]
    return str(transports.ssh(host.name).run(listed).stdout.strip())


_ENGINE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from engine.faults.base import ResolvedTarget
    from engine.plugins import FAULTS
    from engine.spec.loader import load_environment
    from engine.transports.connections import Transports

    transports = Transports(load_environment(Path(sys.argv[1])))
    target = ResolvedTarget(name="db", kind="host", ref="sys1", label="sys1")
    fault = FAULTS.get("host.service_stop")("f1", target, {"service": sys.argv[2], "deadman_ttl_s": 3})
    prior = fault.capture(transports)
    fault.inject(transports, prior)
    print("injected", prior["deadman"]["mode"], flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("service", ["nginx", "postgresql"])
def test_after_kill_9_of_the_engine_the_dead_man_timer_restores_the_service(
    service: str, systemd_lab: tuple[SystemdHost, Path], transports: Transports
) -> None:
    host, check = systemd_lab[0], CHECKS[service]
    assert check(host)
    engine = subprocess.Popen(
        [sys.executable, "-c", _ENGINE, str(systemd_lab[1]), service],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert engine.stdout is not None
        line = engine.stdout.readline()
        while line and not line.startswith("injected"):  # skip the engine's own log lines
            line = engine.stdout.readline()
        assert line.split() == ["injected", "auto"]
        assert _systemd_timers(transports, host), "the dead-man timer is a systemd timer, not the fallback"
        assert not check(host), f"{service} still answers after the fault"
        os.kill(engine.pid, signal.SIGKILL)
        assert engine.wait(timeout=10) == -signal.SIGKILL
        killed_at = time.monotonic()
        assert wait_for(lambda: check(host), 20), f"the dead-man timer did not restart {service}"
        assert time.monotonic() - killed_at < 15
        # The timer fired and is gone: nothing of the fault is left on the host.
        fault = service_stop({"service": service})
        ssh = transports.ssh(host.name)
        list_timers = ["systemctl", "list-timers", "--all", "--no-legend", "bcdrill-deadman-*"]
        # The timer stays listed until its revert (systemctl start …) has finished.
        assert wait_for(lambda: ssh.run(list_timers).stdout.strip() == "", 10), ssh.run(list_timers).stdout
        assert fault.reverted(ssh, {**fault.known_prior(transports.environment.hosts[host.name])})
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait(timeout=10)
        if not check(host):  # leave the host as found for the next test, whatever happened
            transports.ssh(host.name).run(["systemctl", "start", systemd_host.SERVICES[service]])


# systemd-web-stop.yaml's nginx stop runs within the whole-site outage below (and every
# playbook here is bound to the lab offline in test_lab_dc_env.py).
SCENARIO = Path(__file__).resolve().parent.parent / "playbooks" / "systemd" / "systemd-web-stop.yaml"
PG_SCENARIO = SCENARIO.parent / "orders-db-data-loss-pg.yaml"


def _on_host(host: SystemdHost, *argv: str) -> str:
    """Run ``argv`` inside the host through ``docker exec`` (the test's own channel, not SSH)."""
    done = subprocess.run(
        ["docker", "exec", host.container, *argv], check=True, capture_output=True, text=True, timeout=30
    )
    return done.stdout


def _sql(host: SystemdHost, sql: str) -> str:
    psql = ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", systemd_host.ORDERS_DB, "-c", sql]
    return _on_host(host, *psql).strip()


def _newest_in_dump(host: SystemdHost) -> tuple[int, float]:
    """The newest canary row inside the backup file itself (read back with pg_restore)."""
    argv = ["pg_restore", "--data-only", "--table=bcdrill_canary", "-f", "-", systemd_host.BACKUP_FILE]
    dump = _on_host(host, *argv)
    rows = dump.split("COPY public.bcdrill_canary", 1)[1].split("\\.", 1)[0].strip().splitlines()[1:]
    seq, written = rows[-1].split("\t")
    return int(seq), float(_sql(host, f"SELECT extract(epoch FROM timestamptz '{written}')"))


@pytest.mark.prefect
def test_rpo_is_measured_on_the_real_postgresql_after_a_real_restore(
    systemd_lab: tuple[SystemdHost, Path], transports: Transports, prefect_api: str, tmp_path: Path
) -> None:
    host, env = systemd_lab
    ssh, database = transports.ssh(host.name), systemd_host.ORDERS_DB
    started = run_cli("canary", "start", str(env), host.name, "--database", database, "--every", "250ms")
    assert started.returncode == 0 and "(systemd)" in started.stdout, started.stdout + started.stderr
    timer = systemd_host.BACKUP_UNIT.replace(".service", ".timer")
    try:
        assert (canary.wait_for_rows(ssh, database, 3, timeout=10).newest_seq or 0) >= 3
        _on_host(host, "systemctl", "stop", timer)  # the test takes the one backup itself
        _on_host(host, "systemctl", "start", systemd_host.BACKUP_UNIT)
        result = run_cli(
            "run", str(PG_SCENARIO), "--env", str(env), "--runs", str(tmp_path), "--responders", "simulate",
            "--seed", "7", "--time-scale", "0.002", timeout=150,
        )  # fmt: skip
        assert result.returncode in (0, 1), (result.stdout + result.stderr)[-3000:]
        assert canary.canary_status(ssh, database).mode == "systemd"  # it wrote on through the restore
    finally:
        assert canary.canary_stop(ssh, database)
        _on_host(host, "systemctl", "start", timer)
    records = _journal(tmp_path)
    assert [r["data"]["verified"] for r in records if r["type"] == "fault.reverted"] == [True]
    # Ground truth, counted on the database: the backup's newest row survived with all before
    # it; nothing written between the backup and the drop did.
    dump_seq, dump_ts = _newest_in_dump(host)
    assert int(_sql(host, f"SELECT count(*) FROM bcdrill_canary WHERE seq <= {dump_seq}")) == dump_seq
    (intent,) = [_unix(r["at"]) for r in records if r["type"] == "fault.intent"]
    (applied,) = [r for r in records if r["type"] == "fault.applied"]
    # host.command's impact starts as dropdb starts on the target, not when it returned.
    assert "as the inject command started" in applied["data"]["effective_source"]
    assert intent <= _unix(applied["data"]["effective_at"]) <= _unix(applied["at"])
    lost = f"SELECT count(*) FROM bcdrill_canary WHERE written_at > to_timestamp({dump_ts}) "
    assert int(_sql(host, lost + f"AND written_at < to_timestamp({intent})")) == 0
    debrief = json.loads((next(tmp_path.iterdir()) / "debrief.json").read_text())
    rpo = debrief["objectives"]["rpo"]
    assert rpo["met"] is True and f"newest surviving record {dump_seq}@" in rpo["note"], rpo
    # The drop runs from the fault's intent until its command returned (DROP DATABASE waits
    # for a checkpoint: up to seconds on a busy disk); writes stopped somewhere in between,
    # and the probe sees it within one interval (200 ms) plus a read.
    window = (intent - dump_ts - 0.3, _unix(applied["at"]) - dump_ts + 0.6)
    assert window[0] <= rpo["actual_s"] <= window[1], (rpo, window)


def _journal(runs: Path) -> list[dict[str, Any]]:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_the_canary_runs_without_systemd_too_and_stops_as_a_group(
    systemd_lab: tuple[SystemdHost, Path], transports: Transports
) -> None:
    host, database = systemd_lab[0], systemd_host.ORDERS_DB
    ssh, writer = transports.ssh(host.name), f"^/bin/sh {canary.WRITER_PATH} {database} "
    try:
        assert canary.canary_start(ssh, database, 0.2, mode="nohup") == "nohup"
        assert canary.canary_start(ssh, database, 0.2, mode="nohup") == "nohup"  # idempotent: one writer
        assert (canary.wait_for_rows(ssh, database, 3, timeout=10).newest_seq or 0) >= 3
        assert _on_host(host, "pgrep", "-c", "-f", writer).strip() == "1"
    finally:
        assert canary.canary_stop(ssh, database)
    pgrep = ["docker", "exec", host.container, "pgrep", "-f", writer]
    gone = wait_for(lambda: subprocess.run(pgrep, check=False, capture_output=True).returncode == 1, 5)
    assert gone, "the writer outlived stop"
    assert canary.canary_status(ssh, database).running is False
    assert not canary.canary_stop(ssh, database)


SMB_SCENARIO = SCENARIO.parent / "ransomware-share-smb.yaml"


def _share_files(host: SystemdHost) -> dict[str, str]:
    """Every file under the share with its content, read inside the host."""
    listing = _on_host(host, "find", systemd_host.SHARE_DIR, "-type", "f", "-printf", "%P\\n").split()
    return {name: _on_host(host, "cat", f"{systemd_host.SHARE_DIR}/{name}") for name in sorted(listing)}


@pytest.mark.prefect
def test_the_ransomware_scenario_runs_against_the_samba_share(
    systemd_lab: tuple[SystemdHost, Path], prefect_api: str, tmp_path: Path
) -> None:
    host, env = systemd_lab
    before = _share_files(host)
    assert set(before) == set(systemd_host.SHARE_FILES)
    result = run_cli(
        "run", str(SMB_SCENARIO), "--env", str(env), "--runs", str(tmp_path), "--responders", "simulate",
        "--seed", "7", "--time-scale", "0.002", timeout=150,
    )  # fmt: skip
    assert result.returncode in (0, 1), (result.stdout + result.stderr)[-3000:]
    records = _journal(tmp_path)
    changes = [r["data"] for r in records if r["type"] == "probe.changed"]
    states = [change["state"] for change in changes if change["probe"] == "share"]
    assert states == ["up", "down", "up"], states  # smbclient saw the outage and the recovery
    assert [r["data"]["verified"] for r in records if r["type"] == "fault.reverted"] == [True, True]
    assert _share_files(host) == before  # every document back, byte for byte, nothing .locked
    assert _on_host(host, "systemctl", "is-active", systemd_host.SERVICES["samba"]).strip() == "active"
    debrief = json.loads((next(tmp_path.iterdir()) / "debrief.json").read_text())
    assert debrief["objectives"]["rto"]["actual_s"] is not None


SHARE_SCENARIO = SCENARIO.parent / "share-wiped-smb.yaml"


def _canary_lines(text: str) -> list[tuple[int, float]]:
    """``(seq, unix time)`` of every line of a canary file."""
    return [(r.seq, r.ts) for r in parse_records(text, 1000)]


@pytest.mark.prefect
def test_rpo_is_measured_on_the_file_share_after_a_restore_from_its_backup(
    systemd_lab: tuple[SystemdHost, Path], transports: Transports, prefect_api: str, tmp_path: Path
) -> None:
    host, env = systemd_lab
    ssh, share = transports.ssh(host.name), systemd_host.SHARE_DIR
    before = _share_files(host)
    started = run_cli("canary", "start", str(env), host.name, "--share", share, "--every", "250ms")
    assert started.returncode == 0 and "(systemd)" in started.stdout, started.stdout + started.stderr
    timer = share_backup.BACKUP_UNIT.replace(".service", ".timer")
    try:
        assert (share_canary.wait_for_lines(ssh, share, 3, timeout=10).newest_seq or 0) >= 3
        _on_host(host, "systemctl", "stop", timer)  # the test takes the one backup itself
        _on_host(host, "systemctl", "start", share_backup.BACKUP_UNIT)
        backup = _canary_lines(_on_host(host, "tar", "-xOf", share_backup.BACKUP_FILE, f"./{CANARY_FILE}"))
        backup_seq, backup_ts = backup[-1]  # the backup's own newest canary line
        after = share_canary.wait_for_lines(ssh, share, backup_seq + 2, timeout=10)
        assert (after.newest_seq or 0) > backup_seq  # lines the backup does not hold: to be lost
        result = run_cli(
            "run", str(SHARE_SCENARIO), "--env", str(env), "--runs", str(tmp_path),
            "--responders", "simulate", "--seed", "7", "--time-scale", "0.002", timeout=150,
        )  # fmt: skip
        assert result.returncode in (0, 1), (result.stdout + result.stderr)[-3000:]
        assert share_canary.share_canary_status(ssh, share).mode == "systemd"  # it wrote on after the restore
    finally:
        assert share_canary.share_canary_stop(ssh, share)
        _on_host(host, "systemctl", "start", timer)
    try:
        now = _canary_lines(_on_host(host, "cat", f"{share}/{CANARY_FILE}"))
    finally:
        _on_host(host, "rm", "-f", f"{share}/{CANARY_FILE}", f"{share}/{CANARY_FILE}.new")
    assert _share_files(host) == before  # every document back from the backup
    assert _on_host(host, "stat", "-c", "%U:%G", share).strip() == "nobody:nogroup"  # with its owner
    records = _journal(tmp_path)
    assert [r["data"]["verified"] for r in records if r["type"] == "fault.reverted"] == [True]
    # Ground truth, counted in the file: the backup's lines survived; every line written between
    # the backup and the wipe is gone; the writer carried on from the backup's newest line.
    (intent,) = [_unix(r["at"]) for r in records if r["type"] == "fault.intent"]
    assert [line for line in now if line[0] <= backup_seq] == [line for line in backup if line in now]
    assert (backup_seq, backup_ts) in now
    assert not [ts for _, ts in now if backup_ts < ts < intent]
    assert [seq for seq, ts in now if ts > backup_ts][:1] == [backup_seq + 1]
    (applied,) = [r for r in records if r["type"] == "fault.applied"]
    debrief = json.loads((next(tmp_path.iterdir()) / "debrief.json").read_text())
    rpo = debrief["objectives"]["rpo"]
    assert rpo["met"] is True and f"newest surviving record {backup_seq}@" in rpo["note"], rpo
    # The wipe starts at its intent and is over when its command returned; the probe sees it
    # within one interval (200 ms) plus a read.
    window = (intent - backup_ts - 0.3, _unix(applied["at"]) - backup_ts + 0.6)
    assert window[0] <= rpo["actual_s"] <= window[1], (rpo, window)


SITE_SCENARIO = SCENARIO.parent / "whole-site-outage-systemd.yaml"


@pytest.mark.prefect
def test_the_whole_site_outage_stops_every_real_service_each_behind_a_systemd_timer(
    systemd_lab: tuple[SystemdHost, Path], prefect_api: str, tmp_path: Path
) -> None:
    host, env = systemd_lab
    since = _on_host(host, "date", "+%s").strip()
    result = run_cli(
        "run", str(SITE_SCENARIO), "--env", str(env), "--runs", str(tmp_path),
        "--responders", "simulate", "--seed", "7", "--time-scale", "0.002", timeout=150,
    )  # fmt: skip
    assert result.returncode in (0, 1), (result.stdout + result.stderr)[-3000:]
    records = _journal(tmp_path)
    applied = sorted(r["data"]["fault"] for r in records if r["type"] == "fault.applied")
    assert applied == ["stop-database", "stop-share", "stop-web"]
    assert [r["data"]["verified"] for r in records if r["type"] == "fault.reverted"] == [True] * 3
    changes = [r["data"] for r in records if r["type"] == "probe.changed"]
    for probe in ("shop", "database", "share"):  # each service seen going down and coming back
        assert [c["state"] for c in changes if c["probe"] == probe] == ["up", "down", "up"], (probe, changes)
    # Every revert was armed on the host as a transient systemd timer (the dead-man path), and
    # none is left behind.
    logged = _on_host(host, "journalctl", "--since", f"@{since}", "--no-pager", "-o", "cat")
    # systemd names a transient timer in "Started NAME.timer" or, when its description is the
    # revert command, only in "NAME.timer: Deactivated successfully" as the revert stops it
    started = re.findall(r"Started (bcdrill-deadman-[\w-]+)\.timer", logged)
    stopped = re.findall(r"(bcdrill-deadman-[\w-]+)\.timer: Deactivated successfully", logged)
    timers = set(started) | set(stopped)
    assert len(timers) == 3, logged[-2000:]
    listed = ["systemctl", "list-timers", "--all", "--no-legend", "bcdrill-deadman-*"]
    assert _on_host(host, *listed).strip() == ""
    for unit in systemd_host.SERVICES.values():
        assert _on_host(host, "systemctl", "is-active", unit).strip() == "active"
