"""The lab's business services: what the scenario library drills, still offline and fast.

On top of the storefront/api containers and the SSH hosts of :mod:`engine.lab.hosts`, the
lab runs a small client estate (every piece is busybox, started in well under a second):

* container ``orders-db`` — the order database: a writer appends ``<seq> <unix time>`` to
  ``/data/orders.log`` every :data:`WRITE_INTERVAL_S`, a backup job copies it to
  ``/backup/orders.log`` every :data:`BACKUP_INTERVAL_S`; every write is also appended to
  ``/audit/orders.log`` with the boot time (ground truth for RPO tests, never restored).
* container ``identity`` — the staff sign-in service (``/login``, published on loopback).
* host ``app1`` (the application host, target ``app-host``) — the order-entry app: CGI
  ``/cgi-bin/orders`` does a little CPU work and checks the database on the back-end link
  (URL ``orders-app``). It answers 503 when the database cannot be reached.
* host ``app2`` (the back-office server, targets ``db-host`` and ``file-server``) — service
  ``db`` (the database listener on the back-end link), service ``files``: a writer appends
  to ``share/ledger.log`` every second (staff saving work) and a backup job copies it to
  ``backup/`` every :data:`BACKUP_INTERVAL_S`; starting ``files`` runs the file server's
  recovery procedure (restore the ledger from the last backup). CGIs ``/cgi-bin/ledger``
  (newest ledger records, URL ``ledger``) and ``/cgi-bin/save`` (saves a file on the data
  volume, URL ``save``; 507 when the disk is full). ``share/documents`` holds a few files.
* a **back-end link**: a veth pair joining the two hosts' namespaces directly
  (``app1`` = :data:`BACKEND_APP`, ``app2`` = :data:`BACKEND_DB`, a /30 inside the
  namespaces only), so a partition between them is a real network cut.

:func:`services_up` is idempotent and is called by :func:`engine.lab.site.up`.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import NotFound

from engine.errors import PreflightError
from engine.lab.hosts import host_prefix, service_script
from engine.logsetup import get_logger
from engine.web import free_port

log = get_logger(__name__)

WRITE_INTERVAL_S = 1.0
BACKUP_INTERVAL_S = 5.0
BACKEND_APP = "127.254.0.1"
BACKEND_DB = "127.254.0.2"
BACKEND_PORT = 5432
ORDERS_DB = "orders-db"
IDENTITY = "identity"
_WAIT_S = 15.0
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")

# The order database: writer, backup job and a web root, in one busybox container.
_ORDERS_DB_SCRIPT = f"""busybox --install -s /bin
mkdir -p /data /backup /audit /www
echo 'orders-db' > /www/index.html
boot=$EPOCHREALTIME
if [ ! -s /data/orders.log ]; then
    echo "0 $boot" > /data/orders.log
    cp /data/orders.log /backup/orders.log
fi
(
    n=$(tail -n 1 /data/orders.log | cut -d' ' -f1)
    while :; do
        n=$((n+1)); now=$EPOCHREALTIME
        echo "$n $now" >> /data/orders.log
        echo "$n $now $boot" >> /audit/orders.log
        sleep {WRITE_INTERVAL_S:g}
    done
) &
(
    while :; do
        sleep {BACKUP_INTERVAL_S:g}
        cp /data/orders.log /backup/orders.log.tmp && mv /backup/orders.log.tmp /backup/orders.log
    done
) &
exec httpd -f -p 80 -h /www
"""

_IDENTITY_SCRIPT = """busybox --install -s /bin
mkdir -p /www
echo '<h1>Demo Bakery staff sign-in</h1>' > /www/index.html
cp /www/index.html /www/login
exec httpd -f -p 80 -h /www
"""


@dataclass(frozen=True)
class LabExtras:
    """What the lab services add to the environment file: target bindings and named URLs."""

    targets: Mapping[str, Any] = field(default_factory=dict)
    urls: Mapping[str, str] = field(default_factory=dict)


def services_up(
    client: docker.DockerClient,
    lab: str,
    network: str,
    state: Path,
    host_entries: dict[str, Any],
    image: str,
    label: str,
) -> LabExtras:
    """Start the lab's business services (idempotent); return the environment additions.

    ``host_entries`` (the ``ssh_hosts`` entries of the environment) gain the services
    declared on the hosts; pass ``{}`` for a lab without SSH hosts.
    """
    targets: dict[str, Any] = {}
    urls: dict[str, str] = {}
    for role, script, publish in ((ORDERS_DB, _ORDERS_DB_SCRIPT, False), (IDENTITY, _IDENTITY_SCRIPT, True)):
        container = ensure_container(client, lab, network, role, script, publish, image, label)
        targets[role] = {"containers": [container.name]}
        if publish:
            urls[role] = _published_url(container, "/login")
    _wait_for_file(client, f"bcdrill-{lab}-{ORDERS_DB}", "/backup/orders.log")
    if {"app1", "app2"} <= set(host_entries):
        urls.update(_hosts_services_up(state, lab, host_entries))
        targets.update(
            {
                "app-host": {"hosts": ["app1"]},
                "db-host": {"hosts": ["app2"]},
                "file-server": {"hosts": ["app2"]},
            }
        )
    wait_until_serving(urls)
    log.info("lab.services_up", lab=lab, targets=sorted(targets))
    return LabExtras(targets=targets, urls=urls)


# ---------------------------------------------------------------- containers


def ensure_container(
    client: docker.DockerClient,
    lab: str,
    network: str,
    role: str,
    script: str,
    publish: bool,
    image: str,
    label: str,
) -> Any:
    name = f"bcdrill-{lab}-{role}"
    try:
        container = client.containers.get(name)
        if container.status != "running":
            container.start()
        return container
    except NotFound:
        pass
    ports = {"80/tcp": ("127.0.0.1", free_port())} if publish else None
    return client.containers.run(
        image,
        ["/bin/sh", "-c", script],
        name=name,
        detach=True,
        labels={label: lab, "bcdrill.role": role},
        network=network,
        ports=ports,
    )


def _published_url(container: Any, path: str) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}{path}"


def _wait_for_file(client: docker.DockerClient, name: str, path: str) -> None:
    deadline = time.monotonic() + _WAIT_S
    container = client.containers.get(name)
    while container.exec_run(["test", "-s", path]).exit_code != 0:
        if time.monotonic() > deadline:
            raise PreflightError(f"lab container {name!r}: {path!r} did not appear within {_WAIT_S:g}s")
        time.sleep(0.05)


# ---------------------------------------------------------------- hosts


def _hosts_services_up(state: Path, lab: str, host_entries: dict[str, Any]) -> dict[str, str]:
    """Back-end link, app1's order-entry CGI, app2's db and files services; their URLs."""
    prefix, _octet = host_prefix(lab)
    roots = {name: state.resolve() / "hosts" / name for name in ("app1", "app2")}
    _backend_link(prefix)
    _cpu_limit(lab, f"{prefix}-app1")
    _write_app_host(roots["app1"])
    services = _write_back_office(roots["app2"])
    for service in ("db", "files"):
        _run(["ip", "netns", "exec", f"{prefix}-app2", *shlex.split(services[service]["start"])])
    host_entries["app2"].setdefault("services", {}).update(services)
    app1, app2 = (host_entries[h]["address"] for h in ("app1", "app2"))
    return {
        "orders-app": f"http://{app1}/cgi-bin/orders",
        "ledger": f"http://{app2}/cgi-bin/ledger",
        "save": f"http://{app2}/cgi-bin/save",
    }


def _backend_link(prefix: str) -> None:
    """A veth pair straight between the app1 and app2 namespaces (idempotent)."""
    ns1, ns2 = f"{prefix}-app1", f"{prefix}-app2"
    if1, if2 = f"{prefix}x1", f"{prefix}x2"
    present = subprocess.run(
        ["ip", "netns", "exec", ns1, "ip", "link", "show", if1], capture_output=True, check=False
    )
    if present.returncode == 0:
        return
    _run(["ip", "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2])
    setup = (
        'echo 1 > "/proc/sys/net/ipv4/conf/$1/route_localnet" && '
        'ip addr add "$2/30" dev "$1" && ip link set "$1" up'
    )
    _run(["ip", "netns", "exec", ns1, "sh", "-c", setup, "sh", if1, BACKEND_APP])
    _run(["ip", "netns", "exec", ns2, "sh", "-c", setup, "sh", if2, BACKEND_DB])


def _cgroup_dirs(lab: str, host: str) -> tuple[Path, Path]:
    """The host's cgroup in the v1 ``cpu`` hierarchy and in a v2 unified hierarchy."""
    return CGROUP_V1 / f"bcdrill-{lab}-{host}", CGROUP_V2 / f"bcdrill-{lab}-{host}"


def _cpu_limit(lab: str, namespace: str) -> None:
    """Make the host a 1-CPU machine: its processes (sshd, so everything started over SSH
    too) go into a cgroup with a one-CPU quota. Inside a cgroup tasks share the CPU one by
    one (autogroups apply only at the root), so a CPU burn really slows the app down."""
    host = namespace.rsplit("-", 1)[-1]
    v1, v2 = _cgroup_dirs(lab, host)
    if CGROUP_V1.is_dir():
        v1.mkdir(exist_ok=True)
        (v1 / "cpu.cfs_period_us").write_text("100000")
        (v1 / "cpu.cfs_quota_us").write_text("100000")
        procs = v1 / "cgroup.procs"
    elif (CGROUP_V2 / "cgroup.controllers").is_file():
        (CGROUP_V2 / "cgroup.subtree_control").write_text("+cpu")
        v2.mkdir(exist_ok=True)
        (v2 / "cpu.max").write_text("100000 100000")
        procs = v2 / "cgroup.procs"
    else:
        log.warning("lab.no_cpu_cgroup", host=host, effect="a CPU burn will barely slow the app")
        return
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    for pid in out.stdout.split():
        try:
            procs.write_text(pid)
        except OSError:  # the process ended meanwhile
            continue


def services_down(lab: str) -> None:
    """Remove what outlives the lab's namespaces and containers: the hosts' CPU cgroups."""
    for host in ("app1", "app2"):
        for path in _cgroup_dirs(lab, host):
            if path.is_dir():
                try:
                    path.rmdir()
                except OSError as exc:
                    log.warning("lab.cgroup_busy", path=str(path), error=str(exc))


def _write_app_host(root: Path) -> None:
    """The order-entry CGI on app1: a little CPU work, then a round trip to the database."""
    script = f"""#!/bin/sh
# Order entry: check stock (CPU work), then reach the order database on the back-end link.
i=0
while [ $i -lt 20000 ]; do i=$((i+1)); done
reply() {{ printf 'Status: %s\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s\\n' "$1" "$2"; }}
if busybox nc -w 1 {BACKEND_DB} {BACKEND_PORT} </dev/null >/dev/null 2>&1; then
    reply '200 OK' 'orders ok'
else
    reply '503 Service Unavailable' 'order database unreachable'
fi
"""
    _write_executable(root / "www" / "cgi-bin" / "orders", script)


def _write_back_office(root: Path) -> dict[str, Any]:
    """app2's scripts and web CGIs; return the ``services`` entries to declare."""
    q = shlex.quote
    for sub in ("db", "backup", "audit", "share/documents"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "db" / "index.html").write_text("orders database ok\n")
    for n, text in enumerate(("Price list 2027", "Supplier contracts", "Staff rota"), start=1):
        (root / "share" / "documents" / f"doc{n}.txt").write_text(f"{text}\n")
    _write_executable(root / "db.sh", service_script(root / "run" / "db.pid", _db_body(root)))
    _write_executable(root / "files.sh", _files_script(root))
    _write_executable(root / "www" / "cgi-bin" / "ledger", _ledger_cgi(root))
    _write_executable(root / "www" / "cgi-bin" / "save", _save_cgi(root))
    services: dict[str, dict[str, Any]] = {}
    for name in ("db", "files"):
        script = q(str(root / f"{name}.sh"))
        services[name] = {
            "start": f"{script} start",
            "stop": f"{script} stop",
            "status": f"{script} status",
            "pidfile": str(root / "run" / f"{name}.pid"),
        }
    services["files"]["paths"] = {"backup": str(root / "backup"), "audit": str(root / "audit")}
    return services


def _db_body(root: Path) -> str:
    httpd = root.parent.parent / "bin" / "httpd"
    return (
        f"setsid {shlex.quote(str(httpd))} -f -p {BACKEND_DB}:{BACKEND_PORT} "
        f'-h {shlex.quote(str(root / "db"))} </dev/null >/dev/null 2>&1 &\necho $! > "$pidfile"'
    )


def _files_body(root: Path) -> str:
    q = shlex.quote
    ledger, backup, audit = (
        q(str(p)) for p in (root / "share" / "ledger.log", root / "backup", root / "audit")
    )
    return f"""ledger={ledger}; backup={backup}; audit={audit}
# Recovery procedure: the ledger comes back from the last backup; ransom notes go.
if [ -s "$backup/ledger.log" ]; then
    cp "$backup/ledger.log" "$ledger.restore" && mv -f "$ledger.restore" "$ledger"
    rm -f "$ledger.locked"
fi
[ -s "$ledger" ] || echo "0 $(busybox sh -c 'echo $EPOCHREALTIME')" > "$ledger"
[ -s "$backup/ledger.log" ] || cp "$ledger" "$backup/ledger.log"
setsid busybox sh -c '
    ledger=$1; backup=$2; audit=$3
    (
        while :; do
            last=$(tail -n 1 "$ledger" 2>/dev/null)
            n=${{last%% *}}
            case "$n" in ""|*[!0-9]*) ;; *)
                n=$((n+1)); now=$EPOCHREALTIME
                echo "$n $now" >> "$ledger" && echo "$n $now" >> "$audit/ledger.log" ;;
            esac
            sleep {WRITE_INTERVAL_S:g}
        done
    ) &
    while :; do
        sleep {BACKUP_INTERVAL_S:g}
        last=$(tail -n 1 "$ledger" 2>/dev/null)
        case "${{last%% *}}" in ""|*[!0-9]*) continue ;; esac
        cp "$ledger" "$backup/ledger.log.tmp" && mv -f "$backup/ledger.log.tmp" "$backup/ledger.log"
    done
' files "$ledger" "$backup" "$audit" </dev/null >/dev/null 2>&1 &
echo $! > "$pidfile\""""


def _files_script(root: Path) -> str:
    return service_script(root / "run" / "files.pid", _files_body(root))


def _ledger_cgi(root: Path) -> str:
    ledger = shlex.quote(str(root / "share" / "ledger.log"))
    return f"""#!/bin/sh
if [ -r {ledger} ] && tail -n 300 {ledger} > /tmp/.bcdrill-ledger.$$ 2>/dev/null; then
    printf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'
    cat /tmp/.bcdrill-ledger.$$
else
    printf 'Status: 503 Service Unavailable\\r\\nContent-Type: text/plain\\r\\n\\r\\nledger unreadable\\n'
fi
rm -f /tmp/.bcdrill-ledger.$$
"""


def _save_cgi(root: Path) -> str:
    target = shlex.quote(str(root / "data" / ".bcdrill-save-check"))
    return f"""#!/bin/sh
# A member of staff saves a small document on the file server's data volume.
if head -c 4096 /dev/zero > {target} 2>/dev/null && rm -f {target}; then
    printf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nsaved\\n'
else
    rm -f {target}
    printf 'Status: 507 Insufficient Storage\\r\\nContent-Type: text/plain\\r\\n\\r\\nsave failed\\n'
fi
"""


# ---------------------------------------------------------------- helpers


def _write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def wait_until_serving(urls: Mapping[str, str]) -> None:
    """Poll each lab URL until it answers 200, within one overall deadline."""
    import urllib.request

    deadline = time.monotonic() + _WAIT_S
    for url in urls.values():
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - lab URL on 127/8
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PreflightError(f"lab service {url} did not answer within {_WAIT_S:g}s")
            time.sleep(0.05)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        raise PreflightError(
            f"lab command {shlex.join(argv)!r} failed ({proc.returncode}): {proc.stderr.strip()!r}"
        )
