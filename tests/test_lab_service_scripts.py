"""The lab's service scripts under Debian's /bin/sh (dash): stop ends the whole process group."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from engine.lab.hosts import service_script
from engine.record.runstore import pid_alive

# A leader with two children that ignore nothing and never end by themselves (like the ledger writer).
_BODY = """setsid sh -c 'sleep 600 & sleep 600 & wait' </dev/null >/dev/null 2>&1 &
echo $! > "$pidfile\""""


def _group(pgid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pgid), "-r", "R,S,D,T,t"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_stop_ends_every_member_of_the_service_group_under_dash(tmp_path: Path) -> None:
    pidfile = tmp_path / "svc.pid"
    script = tmp_path / "svc.sh"
    script.write_text(service_script(pidfile, _BODY))
    script.chmod(0o755)
    assert Path("/bin/sh").resolve().name == "dash"  # the shell the lab's scripts run under
    started = subprocess.run(["/bin/sh", str(script), "start"], capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    leader = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while len(_group(leader)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = _group(leader)
    assert len(members) == 3, members

    stopped = subprocess.run(["/bin/sh", str(script), "stop"], capture_output=True, text=True, timeout=30)
    assert stopped.returncode == 0 and "Illegal number" not in stopped.stderr, stopped.stderr
    assert [pid for pid in members if pid_alive(pid)] == []
    assert not pidfile.exists()
    status = subprocess.run(["/bin/sh", str(script), "status"], capture_output=True, timeout=30)
    assert status.returncode == 3
