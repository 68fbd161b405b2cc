"""Where a container really listens: its own address instead of the published loopback port.

Probing a published port goes through Docker's userland proxy, which, while the container
starts, forwards the probe to an address whose veth is not wired yet; the host's ARP retry
then stalls the connection for about a second and the recovery reads ~1 s late (NOTES.md,
"the ARP artefact"). An HTTP probe of a container target therefore talks to the container's
address and private port directly whenever the URL is a loopback port that the container
publishes.

A URL that names one of the container's own addresses literally is probed as it is, but the
probe follows the container's state the same way: while the container is not running no
check connects (a connect to the address of a container that is down waits for ARP, up to
the connect deadline, and a check begun so could hide the recovery for that long), and its
start and stop wake the probe.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from engine.errors import PreflightError, TransportError
from engine.logsetup import get_logger
from engine.transports.connections import Transports

log = get_logger(__name__)

#: How long an answer from a container's former address waits for its address to be read
#: again before it is not trusted (the read is one Docker call, slow only while the daemon
#: finishes starting the container).
CONFIRM_TIMEOUT_S = 5.0

#: While checks at a running container's address fail, its address is read again this often.
DOUBT_EVERY_S = 0.5


@dataclass(frozen=True)
class DirectAddress:
    """The container's own address and port for one published port (``ip`` empty while the
    container is not running). An unconfirmed address is the one the container had before
    its latest start: an answer from it counts once :meth:`DirectResolver.confirm` says so."""

    container: str
    ip: str
    port: int
    confirmed: bool = True  # False: the address before the container's latest start, not re-read yet


def private_port(attrs: Mapping[str, Any], host_port: int) -> int | None:
    """The container port published as ``host_port``, None when it publishes no such port."""
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for private, bindings in ports.items():
        for binding in bindings or ():
            if str(binding.get("HostPort")) == str(host_port):
                return int(str(private).split("/", 1)[0])
    return None


def container_ip(attrs: Mapping[str, Any]) -> str:
    """The container's first network address ("" when it is not running)."""
    if not (attrs.get("State") or {}).get("Running"):
        return ""
    return next(iter(_addresses(attrs)), "")


def _addresses(attrs: Mapping[str, Any]) -> list[str]:
    """The container's addresses on its networks, in the daemon's order."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    found = (str((network or {}).get("IPAddress") or "") for network in networks.values())
    return [ip for ip in found if ip]


#: Daemon events after which the container runs (its address is read again) or does not.
_UP_EVENTS = frozenset({"start", "unpause", "restart"})
_DOWN_EVENTS = frozenset({"die", "stop", "pause", "destroy"})
#: A signal sent to the container: it still runs, but its service may stop at once (the
#: daemon reports the death, ``die``, some 40 ms after the service stopped answering).
_SIGNAL_EVENTS = frozenset({"kill"})


class StateFeed:
    """The container's running state from the Docker daemon's event stream, without polling.

    ``running`` is None until an event arrives or a lookup seeds it (:meth:`seed`), and after
    the stream broke (then callers look the container up); ``generation`` changes on every
    state event, so a cached address can be re-read once after each start. ``on_change`` is
    called on each of them (a start or a stop) and on each signal sent to the container, from
    the feed's thread.
    """

    def __init__(self, transports: Transports, container_id: str, on_change: Callable[[], None]) -> None:
        self.running: bool | None = None
        self.generation = 0
        self._on_change = on_change
        self._lock = threading.Lock()
        self._open = True
        api = transports.docker.client.api
        filters = {"container": container_id, "type": "container"}
        self._stream: Any = transports.docker.call("events", api.events, filters=filters, decode=True)
        name = f"state-feed-{container_id[:12]}"
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            for event in self._stream:
                if not isinstance(event, dict):
                    continue
                action = str(event.get("Action") or event.get("status") or "")
                if action in _UP_EVENTS or action in _DOWN_EVENTS:
                    with self._lock:
                        self.running = action in _UP_EVENTS
                        self.generation += 1
                    self._on_change()
                elif action in _SIGNAL_EVENTS:
                    self._on_change()
        except Exception:  # closed, or the daemon went away: fall back to inspecting
            log.debug("state_feed.ended", exc_info=True)
        with self._lock:
            self._open = False
            self.running = None

    def seed(self, running: bool, generation: int) -> None:
        """The state from a lookup begun at ``generation`` after the stream opened: it holds
        until the next event, unless an event came since (or the stream broke)."""
        with self._lock:
            if self._open and self.running is None and self.generation == generation:
                self.running = running

    def close(self) -> None:
        """Close the stream (its thread then ends)."""
        with contextlib.suppress(Exception):
            self._stream.close()


class DirectResolver:
    """Resolves a published loopback port of one container to its own address, per check
    (or, given ``literal_ip``, follows the state of the container that has that address).

    The private port is learned on the first lookup that finds the container running (the
    steady state is checked before any fault), and kept: a stopped container publishes no
    ports, yet the probe still knows where the service would be. From then on the daemon's
    event stream (:class:`StateFeed`, seeded by the next lookup) says whether the container
    runs, so a check costs no Docker call, whether the container runs or not.

    After each start the address is read again, beside the checks rather than before them:
    the daemon answers that read only once it has finished starting the container (hundreds
    of milliseconds on a busy machine), while the service may answer at once. Until then the
    checks use the address the container had (Docker gives it back when it is free), and an
    answer from it counts once :meth:`confirm` has seen the read agree. ``on_change`` is
    called when the container starts, stops or is sent a signal (from the event stream's
    thread), so the probe can look at once: its down moment and its recovery are both seen as
    they happen, not up to an interval later.

    With ``literal_ip`` (the URL names the container's address), ``host_port`` is the URL's
    port and the address is the URL's: it is used when the first lookup finds it among the
    container's addresses, and needs no re-reading.
    """

    def __init__(
        self,
        transports: Transports,
        container: str,
        host_port: int,
        on_change: Callable[[], None] | None = None,
        literal_ip: str = "",
    ) -> None:
        self._transports = transports
        self._container = container
        self._host_port = host_port
        self._literal_ip = literal_ip
        self.on_change = on_change
        self._port: int | None = None
        self._not_published = False
        self._feed: StateFeed | None = None
        self._ip = ""  # the address read last ("" when the container was not running)
        self._ip_generation = -1
        self._known_ip = ""  # the last address the container had
        self._reader: ThreadPoolExecutor | None = None
        self._reread: Future[DirectAddress | None] | None = None
        self._reread_generation = -1
        self._doubted_at = -DOUBT_EVERY_S

    def resolve(self) -> DirectAddress | None:
        """The direct address now; None when the port is not this container's (probe the URL)."""
        if self._not_published:
            return None
        feed = self._feed
        if feed is not None and self._port is not None:
            if feed.running is False:
                return DirectAddress(self._container, "", self._port)
            if feed.running and self._literal_ip:
                return DirectAddress(self._container, self._literal_ip, self._port)
            if feed.running and self._ip and feed.generation == self._ip_generation:
                return DirectAddress(self._container, self._ip, self._port)
            if feed.running and self._known_ip:
                return self._reading_again(feed.generation, self._port)
        return self._inspect()

    def confirm(self, address: DirectAddress) -> bool:
        """Whether ``address`` is still its container's: at once for a confirmed one, else once
        the read begun after the container's start has answered."""
        reread = self._reread
        if address.confirmed:
            return True
        if reread is None:
            return False
        try:
            fresh = reread.result(timeout=CONFIRM_TIMEOUT_S)
        except Exception:  # the read failed or never answered: the answer is not trusted
            log.debug("direct.confirm_failed", container=self._container, exc_info=True)
            return False
        return fresh is not None and fresh.ip == address.ip

    def changes(self) -> int:
        """How many times the container started or stopped since its events were followed (-1
        while they are not): a check across which this moved saw the container change under it."""
        feed = self._feed
        return feed.generation if feed is not None else -1

    def doubt(self) -> None:
        """A check at the container's address failed while the container runs (it may have
        been reconnected to its network at another address, which no container event says):
        read the address again beside the checks, at most every :data:`DOUBT_EVERY_S`."""
        if self._literal_ip:
            return  # the URL's own address: nothing to read again
        reread, now = self._reread, time.monotonic()
        if (reread is None or reread.done()) and now - self._doubted_at >= DOUBT_EVERY_S:
            self._doubted_at = now
            self._read_again()

    def _reading_again(self, generation: int, port: int) -> DirectAddress:
        """The address before the latest start, unconfirmed; starts reading it again (once per
        start, again if a read ended without the address)."""
        former, reread = self._known_ip, self._reread  # the read may change it at once
        if self._reread_generation != generation or (reread is not None and reread.done()):
            self._read_again()
        return DirectAddress(self._container, former, port, confirmed=False)

    def _read_again(self) -> None:
        """Look the container up in the background thread, as of the feed's latest event."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix=f"direct-{self._container}")
        self._reread_generation = self._feed.generation if self._feed is not None else -1
        self._reread = self._reader.submit(self._inspect)

    def _inspect(self) -> DirectAddress | None:
        generation = self._feed.generation if self._feed is not None else -1
        try:
            container = self._transports.docker.container(self._container)
        except PreflightError:  # no Docker endpoint in the environment: probe the URL
            self._not_published = True
            return None
        except TransportError:
            return DirectAddress(self._container, "", self._port or 0) if self._port else None
        attrs = container.attrs
        if self._port is None:
            if not (attrs.get("State") or {}).get("Running"):
                return None  # not learned yet: use the URL this time
            self._port = self._learn_port(attrs)
            if self._port is None:
                self._not_published = True
                return None
            self._open_feed(str(container.id))
        ip = container_ip(attrs)
        if self._literal_ip and ip:
            ip = self._literal_ip  # the URL's address, not necessarily the first network's
        self._ip, self._ip_generation = ip, generation
        self._known_ip = self._ip or self._known_ip
        if self._feed is not None and generation >= 0:  # looked up after the stream opened
            self._feed.seed(bool((attrs.get("State") or {}).get("Running")), generation)
        return DirectAddress(self._container, self._ip, self._port)

    def _learn_port(self, attrs: Mapping[str, Any]) -> int | None:
        """The container's port behind the URL (the published one's private port, or the
        URL's own at the container's literal address); None when the URL is not the container's."""
        if self._literal_ip:
            return self._host_port if self._literal_ip in _addresses(attrs) else None
        return private_port(attrs, self._host_port)

    def _open_feed(self, container_id: str) -> None:
        try:
            self._feed = StateFeed(self._transports, container_id, self._changed)
        except TransportError:
            self._feed = None  # inspect on every check instead

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def close(self) -> None:
        """Stop following the daemon's events and reading addresses."""
        if self._feed is not None:
            self._feed.close()
            self._feed = None
        if self._reader is not None:
            self._reader.shutdown(wait=False, cancel_futures=True)
            self._reader = None
