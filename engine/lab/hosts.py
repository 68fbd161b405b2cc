"""Lab SSH hosts: network namespaces with their own sshd and a small web service.

Each lab host ``<name>`` (``app1``, ``app2``, …) is a network namespace ``<prefix>-<name>``
joined to the machine by a veth pair on a loopback-range /30: the machine side is
``127.<octet>.<N>.1`` (interface ``<prefix>h<N>``), the namespace side ``127.<octet>.<N>.2``
(interface ``<prefix>n<N>``), with ``route_localnet=1`` on both sides. Only 127.0.0.0/8
addresses are ever used.

Inside the namespace run:

* ``sshd`` (Debian's openssh-server, ``-f /dev/null`` and explicit ``-o`` options) with a
  generated ed25519 host key, listening on the namespace address, port 22. The lab user is
  **root**, authenticated by one generated client key per state directory through
  ``AuthorizedKeysFile=<state>/client/authorized_keys``; the hosts declare ``sudo: false``
  (there is no sudo to call and root needs none).
* a ``web`` service: busybox ``httpd`` on port 80, managed by ``hosts/<name>/web.sh
  start|stop|status`` with a pidfile.

Namespaces share the machine's filesystem, so each host gets its own tree
``<state>/hosts/<name>/{www,data,share,run}``; ``data`` is a small tmpfs so a disk-fill
drill fills only that host's "disk". The web service declares these directories under
``paths`` in the environment entry (see :meth:`LabHost.environment_entry`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import PreflightError
from engine.logsetup import get_logger
from engine.model.types import SecretRef, SshHost, frozen_mapping

log = get_logger(__name__)

DEFAULT_OCTET = 77
MAX_HOSTS = 250
DATA_SIZE = "32m"
_STATE_FILE = "lab.json"
_BUSYBOX = "/usr/bin/busybox"
_SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class LabHost:
    """One running lab host and everything needed to reach and describe it."""

    name: str
    namespace: str
    address: str
    machine_address: str
    port: int
    key_path: Path
    host_key: str
    root: Path
    service_start: str
    service_stop: str
    service_status: str
    http_url: str

    @property
    def paths(self) -> dict[str, str]:
        """The host's declared directories: ``www``, ``data`` (tmpfs) and ``share``."""
        return {d: str(self.root / d) for d in ("www", "data", "share")}

    @property
    def pidfile(self) -> str:
        """The web service's pidfile."""
        return str(self.root / "run" / "web.pid")

    def services(self) -> dict[str, Any]:
        """The ``services`` mapping of the environment entry."""
        return {
            "web": {
                "start": self.service_start,
                "stop": self.service_stop,
                "status": self.service_status,
                "pidfile": self.pidfile,
                "process": "httpd",
                "paths": self.paths,
            }
        }

    def environment_entry(self) -> dict[str, Any]:
        """The host's ``ssh_hosts`` entry for an environment YAML file (plain data)."""
        return {
            "address": self.address,
            "port": self.port,
            "user": "root",
            "key": f"file:{self.key_path}",
            "agent": False,
            "host_key": self.host_key,
            "sudo": False,
            "connect_timeout": "5s",
            "command_timeout": "30s",
            "services": self.services(),
        }

    def ssh_host(self, **overrides: Any) -> SshHost:
        """The same entry as an :class:`~engine.model.types.SshHost` (tests, the lab CLI)."""
        fields: dict[str, Any] = {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": "root",
            "key": SecretRef(f"file:{self.key_path}"),
            "use_agent": False,
            "host_key": self.host_key,
            "known_hosts": None,
            "sudo": False,
            "connect_timeout_s": 5.0,
            "command_timeout_s": 30.0,
            "services": frozen_mapping(self.services()),
        }
        fields.update(overrides)
        return SshHost(**fields)


@dataclass(frozen=True)
class HostStatus:
    """What ``hosts_status`` found for one host."""

    name: str
    namespace: bool
    sshd: bool
    web: bool


# ---------------------------------------------------------------- public API


def hosts_up(
    state_dir: Path, count: int = 2, prefix: str = "bcd", *, octet: int = DEFAULT_OCTET
) -> list[LabHost]:
    """Bring up ``count`` lab hosts (idempotent: healthy hosts are kept as they are).

    ``prefix`` names namespaces and interfaces (at most 6 lower-case letters or digits);
    ``octet`` is the second octet of the hosts' 127.x.y.z addresses, so two labs with
    different prefixes and octets can coexist.
    """
    _check_args(count, prefix, octet)
    state_dir = state_dir.resolve()
    (state_dir / "bin").mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    _link_httpd(state_dir)
    key_path = _client_key(state_dir)
    _sysctl("/proc/sys/net/ipv4/conf/all/route_localnet", "1")
    _write_state(state_dir, prefix, octet, count)
    with ThreadPoolExecutor(max_workers=8) as pool:
        hosts = list(pool.map(lambda n: _host_up(state_dir, prefix, octet, n, key_path), range(1, count + 1)))
    log.info("lab.hosts_up", count=count, prefix=prefix)
    return hosts


def hosts_down(state_dir: Path, prefix: str = "bcd") -> None:
    """Remove every lab host of ``prefix``: processes, namespaces, veths, mounts and keys."""
    state_dir = state_dir.resolve()
    names = [ns for ns in _namespaces() if ns.startswith(f"{prefix}-")]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_namespace_down, names))
    for link in _links(prefix):  # veths whose namespace was deleted by hand
        subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)
    hosts_root = state_dir / "hosts"
    if hosts_root.is_dir():
        for host_dir in hosts_root.iterdir():
            _unmount(host_dir / "data")
        shutil.rmtree(hosts_root)
    for leftover in ("client", "bin", _STATE_FILE):
        path = state_dir / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log.info("lab.hosts_down", prefix=prefix, removed=len(names))


def hosts_status(state_dir: Path, prefix: str = "bcd") -> list[HostStatus]:
    """The state of every host recorded in ``state_dir`` for ``prefix``."""
    state = _read_state(state_dir.resolve())
    if state is None or state.get("prefix") != prefix:
        return []
    present = set(_namespaces())
    statuses = []
    for n in range(1, int(state["count"]) + 1):
        name = f"app{n}"
        root = state_dir.resolve() / "hosts" / name
        namespace = f"{prefix}-{name}"
        statuses.append(
            HostStatus(
                name=name,
                namespace=namespace in present,
                sshd=_pid_alive(root / "run" / "sshd.pid"),
                web=_pid_alive(root / "run" / "web.pid"),
            )
        )
    return statuses


def lab_hosts(state_dir: Path, prefix: str = "bcd") -> list[LabHost]:
    """Descriptions of the hosts a previous :func:`hosts_up` made (no changes)."""
    state_dir = state_dir.resolve()
    state = _read_state(state_dir)
    if state is None or state.get("prefix") != prefix:
        return []
    key_path = state_dir / "client" / "id_ed25519"
    return [
        _describe(state_dir, prefix, int(state["octet"]), n, key_path)
        for n in range(1, int(state["count"]) + 1)
    ]


# ---------------------------------------------------------------- one host


def _describe(state_dir: Path, prefix: str, octet: int, n: int, key_path: Path) -> LabHost:
    name = f"app{n}"
    root = state_dir / "hosts" / name
    address = f"127.{octet}.{n}.2"
    script = shlex.quote(str(root / "web.sh"))
    pub = root / "ssh_host_ed25519_key.pub"
    host_key = " ".join(pub.read_text().split()[:2]) if pub.exists() else ""
    return LabHost(
        name=name,
        namespace=f"{prefix}-{name}",
        address=address,
        machine_address=f"127.{octet}.{n}.1",
        port=22,
        key_path=key_path,
        host_key=host_key,
        root=root,
        service_start=f"{script} start",
        service_stop=f"{script} stop",
        service_status=f"{script} status",
        http_url=f"http://{address}/",
    )


def _host_up(state_dir: Path, prefix: str, octet: int, n: int, key_path: Path) -> LabHost:
    root = state_dir / "hosts" / f"app{n}"
    namespace = f"{prefix}-app{n}"
    if namespace in _namespaces() and _pid_alive(root / "run" / "sshd.pid"):
        host = _describe(state_dir, prefix, octet, n, key_path)
        _run(["ip", "netns", "exec", namespace, str(root / "web.sh"), "start"])
        return host
    _kill_strays(root)
    _namespace_down(namespace)
    _make_tree(state_dir, root, f"app{n}", f"127.{octet}.{n}.2")
    host = _describe(state_dir, prefix, octet, n, key_path)
    _make_network(prefix, n, octet, namespace)
    _start_sshd(host, state_dir)
    _run(["ip", "netns", "exec", namespace, str(root / "web.sh"), "start"])
    return host


def _make_tree(state_dir: Path, root: Path, name: str, address: str) -> None:
    for sub in ("www", "data", "share", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(root / "data"):
        _run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={DATA_SIZE},mode=0755",
                "tmpfs",
                str(root / "data"),
            ]
        )
    (root / "www" / "index.html").write_text(f"<h1>{name}</h1>\n<p>bcdrill lab host</p>\n")
    key = root / "ssh_host_ed25519_key"
    if not key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"bcdrill-{name}", "-f", str(key)])
    script = root / "web.sh"
    script.write_text(_web_script(name, address, state_dir / "bin" / "httpd", root))
    script.chmod(0o755)


def _make_network(prefix: str, n: int, octet: int, namespace: str) -> None:
    outside, inside = f"{prefix}h{n}", f"{prefix}n{n}"
    _run(["ip", "netns", "add", namespace])
    _run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", namespace])
    _run(["ip", "addr", "add", f"127.{octet}.{n}.1/30", "dev", outside])
    _sysctl(f"/proc/sys/net/ipv4/conf/{outside}/route_localnet", "1")
    _run(["ip", "link", "set", outside, "up"])
    inner = (
        'for f in all "$1"; do echo 1 > "/proc/sys/net/ipv4/conf/$f/route_localnet"; done; '
        'ip addr add "$2" dev "$1" && ip link set "$1" up && ip link set lo up'
    )
    _run(["ip", "netns", "exec", namespace, "sh", "-c", inner, "sh", inside, f"127.{octet}.{n}.2/30"])


def _start_sshd(host: LabHost, state_dir: Path) -> None:
    run_dir = host.root / "run"
    pidfile = run_dir / "sshd.pid"
    pidfile.unlink(missing_ok=True)
    options = {
        "ListenAddress": f"{host.address}:{host.port}",
        "PidFile": str(pidfile),
        "UsePAM": "no",
        "StrictModes": "no",
        "AuthorizedKeysFile": str(state_dir / "client" / "authorized_keys"),
        "PermitRootLogin": "prohibit-password",
        "PubkeyAuthentication": "yes",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "UseDNS": "no",
        "PrintMotd": "no",
        "MaxSessions": "64",
        "MaxStartups": "100",
        "LogLevel": "ERROR",
        # Debian's bash sources ~/.bashrc for SSH commands unless SHLVL says it is nested;
        # root's ~/.bashrc on a developer machine can cost ~90 ms per command (pyenv).
        "SetEnv": "SHLVL=1",
    }
    argv = [_SSHD, "-f", "/dev/null", "-h", str(host.root / "ssh_host_ed25519_key")]
    argv += ["-E", str(run_dir / "sshd.log")]
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    _run(["ip", "netns", "exec", host.namespace, *argv])
    deadline = time.monotonic() + 5
    while not _pid_alive(pidfile):
        if time.monotonic() > deadline:
            raise PreflightError(f"lab host {host.name!r}: sshd did not start (see {run_dir})")
        time.sleep(0.01)


def _namespace_down(namespace: str) -> None:
    if namespace in _namespaces():
        _kill_namespace(namespace)
    # The veth may outlive its namespace for a moment (or a namespace deleted by hand).
    prefix, _, name = namespace.partition("-")
    outside = f"{prefix}h{name.removeprefix('app')}"
    subprocess.run(["ip", "link", "del", outside], check=False, capture_output=True)


def _kill_namespace(namespace: str) -> None:
    for _ in range(50):
        pids = _namespace_pids(namespace)
        if not pids:
            break
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)


# ---------------------------------------------------------------- helpers


def _web_script(name: str, address: str, httpd: Path, root: Path) -> str:
    q = shlex.quote
    start = (
        f"setsid {q(str(httpd))} -f -p {q(address)}:80 -h {q(str(root / 'www'))} "
        '</dev/null >/dev/null 2>&1 &\n    echo $! > "$pidfile"'
    )
    script = service_script(root / "run" / "web.pid", start, "ss -Hltn 'sport = :80' | grep -q .", "httpd")
    return script.replace(
        "#!/bin/sh\n", f"#!/bin/sh\n# web service of lab host {name}: busybox httpd on {address}:80\n", 1
    )


def service_script(pidfile: Path, start_body: str, ready: str = "running", command: str = "") -> str:
    """A start|stop|status script for a process group whose leader's pid is in ``pidfile``.

    ``ready`` is the shell test ``start`` waits for (by default: the leader runs); ``command``,
    when given, is the leader's process name, checked so a recycled pid is not taken for it.
    Stop ends the whole group (dash takes ``kill -s TERM -- -PGID``, not ``kill -TERM --
    -PGID``), waits for it, then kills what is left. Liveness ignores zombies: this machine's
    init may not reap orphans.
    """
    same = f'[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = {shlex.quote(command)} ] && ' if command else ""
    return f"""#!/bin/sh
pidfile={shlex.quote(str(pidfile))}
alive() {{ grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$1/status"; }}
running() {{ [ -f "$pidfile" ] && pid=$(cat "$pidfile") && [ -n "$pid" ] && {same}alive "$pid"; }}
case "$1" in
start)
    running && exit 0
    {start_body}
    i=0
    while [ $i -lt 100 ] && ! {{ {ready}; }}; do sleep 0.02; i=$((i+1)); done
    running
    ;;
stop)
    if running; then
        kill -s TERM -- "-$pid" 2>/dev/null || kill -s TERM "$pid"
        i=0
        while [ $i -lt 100 ] && pgrep -g "$pid" -r R,S,D,T,t >/dev/null 2>&1; do sleep 0.02; i=$((i+1)); done
        kill -s KILL -- "-$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
    ;;
status)
    running || exit 3
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
"""


def _check_args(count: int, prefix: str, octet: int) -> None:
    if not (prefix.isascii() and prefix.isalnum() and prefix.islower() and 1 <= len(prefix) <= 6):
        raise PreflightError(f"lab prefix {prefix!r} must be 1-6 lower-case letters or digits")
    if not 1 <= count <= MAX_HOSTS:
        raise PreflightError(f"lab host count {count!r} must be between 1 and {MAX_HOSTS}")
    if not 1 <= octet <= 254:
        raise PreflightError(f"lab address octet {octet!r} must be between 1 and 254")
    if os.geteuid() != 0:
        raise PreflightError("lab hosts need root (network namespaces, veths, sshd)")


def _client_key(state_dir: Path) -> Path:
    client = state_dir / "client"
    client.mkdir(parents=True, exist_ok=True)
    client.chmod(0o700)
    key = client / "id_ed25519"
    if not key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bcdrill-lab", "-f", str(key)])
    authorized = client / "authorized_keys"
    authorized.write_text(Path(f"{key}.pub").read_text())
    return key


def _link_httpd(state_dir: Path) -> None:
    # A symlink named httpd makes the process's name "httpd" (busybox picks the applet by it).
    link = state_dir / "bin" / "httpd"
    if not link.is_symlink():
        link.symlink_to(_BUSYBOX)


def _write_state(state_dir: Path, prefix: str, octet: int, count: int) -> None:
    data = {"prefix": prefix, "octet": octet, "count": count}
    (state_dir / _STATE_FILE).write_text(json.dumps(data) + "\n")


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / _STATE_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def _links(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    names = [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]
    return [n for n in names if re.fullmatch(rf"{re.escape(prefix)}h\d+", n)]


def _namespace_pids(namespace: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _kill_strays(root: Path) -> None:
    """A broken host's sshd and web server outlive its deleted namespace: end the ones whose
    pidfiles name a process still started from this host's folder (never a recycled pid)."""
    for name in ("sshd.pid", "web.pid"):
        try:
            pid = int((root / "run" / name).read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if str(root) in cmdline:
            _kill(pid, signal.SIGKILL)


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _unmount(path: Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _sysctl(path: str, value: str) -> None:
    Path(path).write_text(value)


def _run(argv: Sequence[str]) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        raise PreflightError(
            f"lab command {shlex.join(argv)!r} failed ({proc.returncode}): {proc.stderr.strip()!r}"
        )
    return proc.stdout


def host_prefix(name: str) -> tuple[str, int]:
    """Namespace prefix and 127.<octet>.x.y range of a lab's SSH hosts (distinct per lab)."""
    if name == "lab":
        return "bcd", 77
    return f"b{zlib.crc32(name.encode()) % 100000:05d}", 80 + zlib.crc32(name.encode()) % 150
