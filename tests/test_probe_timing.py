"""The HTTP probe's timing: when its connection opened, and its own connect deadline.

Real sockets on 127.0.0.1 (an HTTP server in a thread; a listener whose accept queue is full,
so the next SYN is dropped and the connect hangs, as it does for a container whose network
is not wired yet), and the pure logic that finds a container's own address (a stand-in for the
Docker daemon's lookups and event stream; ``tests/test_timing_truth.py`` runs it on real
containers).
"""

from __future__ import annotations

import http.server
import queue
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from engine.model.types import Environment, ProbeSpec, TargetBinding, frozen_mapping
from engine.probes.direct import DirectAddress, DirectResolver, StateFeed, container_ip, private_port
from engine.probes.http import CONNECT_TIMEOUT_S, RECONNECT_TIMEOUT_S, HttpProbe
from engine.testing import wait_until
from engine.transports.connections import Transports
from engine.web import is_loopback

ENVIRONMENT = Environment(
    name="unit", kind="test", client="acme", docker=None, hosts={}, targets={}, participants=(), urls={}
)


def _probe(url: str, timeout_s: float = 0.5) -> HttpProbe:
    spec = ProbeSpec("web", "http", None, 0.1, timeout_s, frozen_mapping({"url": url}))
    return HttpProbe(spec, ENVIRONMENT, Transports(ENVIRONMENT))


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.15)  # a slow answer: the connection opened long before it
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_recovery_is_stamped_when_the_connection_opened(slow_server: str) -> None:
    started = time.monotonic()
    result = _probe(slow_server).check()
    elapsed = time.monotonic() - started
    assert result.healthy and result.opened_after_s is not None
    assert result.opened_after_s < 0.05 < 0.15 <= elapsed  # opened at once, answered 150 ms later


@pytest.fixture
def full_listener() -> Iterator[int]:
    """A loopback listener that never accepts, its accept queue already full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_a_hung_connect_gives_up_at_the_connect_deadline(full_listener: int) -> None:
    started = time.monotonic()
    result = _probe(f"http://127.0.0.1:{full_listener}/", timeout_s=2.0).check()
    elapsed = time.monotonic() - started
    assert not result.healthy
    assert CONNECT_TIMEOUT_S - 0.02 <= elapsed < 1.0  # not the 2 s probe timeout


def test_a_container_address_comes_from_its_published_port() -> None:
    attrs = {
        "State": {"Running": True},
        "NetworkSettings": {
            "Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}], "443/tcp": None},
            "Networks": {"bcdrill-lab": {"IPAddress": "172.18.0.5"}},
        },
    }
    assert private_port(attrs, 32768) == 80
    assert private_port(attrs, 9999) is None
    assert container_ip(attrs) == "172.18.0.5"
    assert container_ip({**attrs, "State": {"Running": False}}) == ""
    assert is_loopback("localhost") and is_loopback("127.3.2.1") and not is_loopback("172.18.0.5")


def _attrs(ip: str) -> dict[str, Any]:
    return {
        "State": {"Running": True},
        "NetworkSettings": {
            "Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}]},
            "Networks": {"lab": {"IPAddress": ip}},
        },
    }


class _Daemon:
    """Stands in for the Docker daemon: lookups answer ``attrs``; ``emit`` feeds the event stream."""

    def __init__(self, ip: str) -> None:
        self.attrs = _attrs(ip)
        self.lookups = 0
        self._events: queue.Queue[dict[str, str] | None] = queue.Queue()
        self.client = SimpleNamespace(api=SimpleNamespace(events=None))

    def container(self, _name: str) -> SimpleNamespace:
        self.lookups += 1
        return SimpleNamespace(id="c0ffee", attrs=self.attrs)

    def call(self, _what: str, _fn: object, **_kwargs: object) -> Iterable[dict[str, str]]:
        daemon = self

        class _Stream:
            def __iter__(self) -> Iterator[dict[str, str]]:
                return iter(daemon._events.get, None)

            def close(self) -> None:
                daemon._events.put(None)

        return _Stream()

    def emit(self, action: str) -> None:
        self._events.put({"Action": action})


def _restarted(daemon: _Daemon, new_ip: str) -> tuple[DirectResolver, DirectAddress]:
    """A resolver that learned ``172.18.0.5``, then saw its container stop and start again
    (at ``new_ip``); returns it and the first address it gives after the start."""
    changed = threading.Event()
    resolver = DirectResolver(SimpleNamespace(docker=daemon), "web", 32768, on_change=changed.set)  # type: ignore[arg-type]
    assert resolver.resolve() == _address("172.18.0.5")
    daemon.emit("die")
    assert changed.wait(2), "the stop did not reach on_change"
    _resolves_to(resolver, "")
    changed.clear()
    daemon.attrs = _attrs(new_ip)
    daemon.emit("start")
    assert changed.wait(2), "the start did not reach on_change"
    address = resolver.resolve()
    assert address is not None
    return resolver, address


def _address(ip: str) -> DirectAddress:
    return DirectAddress("web", ip, 80)


def _resolves_to(resolver: DirectResolver, ip: str) -> None:
    wait_until(
        f"the resolver to give {ip or 'no address'}", lambda: resolver.resolve() == _address(ip), 2, 0.005
    )


def test_after_a_start_the_former_address_is_used_at_once_and_confirmed_beside() -> None:
    daemon = _Daemon("172.18.0.5")
    resolver, address = _restarted(daemon, "172.18.0.5")
    try:
        assert (address.ip, address.confirmed) == ("172.18.0.5", False)  # no lookup waited for
        assert resolver.confirm(address)
        _resolves_to(resolver, "172.18.0.5")  # confirmed from now on
    finally:
        resolver.close()


def test_an_answer_from_the_former_address_does_not_count_when_the_container_moved() -> None:
    daemon = _Daemon("172.18.0.5")
    resolver, address = _restarted(daemon, "172.18.0.9")
    try:
        assert (address.ip, address.confirmed) == ("172.18.0.5", False)
        assert not resolver.confirm(address)  # whoever answered there, it is not this container
        _resolves_to(resolver, "172.18.0.9")
    finally:
        resolver.close()


def test_once_the_event_stream_is_seeded_a_running_container_costs_no_lookup() -> None:
    daemon = _Daemon("172.18.0.5")
    resolver = DirectResolver(SimpleNamespace(docker=daemon), "web", 32768)  # type: ignore[arg-type]
    try:
        resolver.resolve()  # learns the port, opens the event stream
        resolver.resolve()  # looked up after the stream opened: seeds it
        lookups = daemon.lookups
        assert all(resolver.resolve() == _address("172.18.0.5") for _ in range(5))
        assert daemon.lookups == lookups
    finally:
        resolver.close()


def test_a_lookup_never_overrides_an_event_nor_a_broken_stream() -> None:
    daemon = _Daemon("172.18.0.5")
    feed = StateFeed(SimpleNamespace(docker=daemon), "c0ffee", lambda: None)  # type: ignore[arg-type]
    daemon.emit("die")
    wait_until("the die event", lambda: feed.generation == 1, 2, 0.005)
    feed.seed(True, 0)  # begun before the event: stale
    assert feed.running is False
    feed.close()
    wait_until("the stream to end", lambda: feed.running is None, 2, 0.005)
    feed.seed(True, 1)
    assert feed.running is None  # no stream, no state: callers look the container up


def test_a_failed_check_at_a_running_container_reads_its_address_again() -> None:
    daemon = _Daemon("172.18.0.5")
    resolver = DirectResolver(SimpleNamespace(docker=daemon), "web", 32768)  # type: ignore[arg-type]
    try:
        resolver.resolve()
        resolver.resolve()  # following the container's events now
        daemon.attrs = _attrs("172.18.0.9")  # reconnected elsewhere: no container event says so
        assert resolver.resolve() == _address("172.18.0.5")
        resolver.doubt()
        _resolves_to(resolver, "172.18.0.9")
        lookups = daemon.lookups
        resolver.doubt()  # again at once: not another lookup yet
        time.sleep(0.05)
        assert daemon.lookups == lookups
    finally:
        resolver.close()


def _two_networks() -> dict[str, Any]:
    attrs = _attrs("172.18.0.5")
    attrs["NetworkSettings"]["Networks"]["backend"] = {"IPAddress": "172.19.0.7"}
    return attrs


def test_a_url_naming_the_container_address_follows_its_state_and_keeps_that_address() -> None:
    daemon = _Daemon("172.18.0.5")
    daemon.attrs = _two_networks()
    changed = threading.Event()
    transports: Any = SimpleNamespace(docker=daemon)
    resolver = DirectResolver(transports, "web", 8080, on_change=changed.set, literal_ip="172.19.0.7")
    at_url = DirectAddress("web", "172.19.0.7", 8080)
    try:
        assert resolver.resolve() == at_url  # the URL's address (not the first network's) and port
        daemon.emit("die")
        assert changed.wait(2), "the stop did not reach on_change"
        changed.clear()
        wait_until(
            "no address while down", lambda: resolver.resolve() == DirectAddress("web", "", 8080), 2, 0.005
        )
        lookups = daemon.lookups
        daemon.emit("start")
        assert changed.wait(2), "the start did not reach on_change"
        wait_until("the URL's address again", lambda: resolver.resolve() == at_url, 2, 0.005)
        assert resolver.confirm(at_url)
        resolver.doubt()  # a failed check there reads nothing again: the URL fixes the address
        time.sleep(0.05)
        assert daemon.lookups == lookups
    finally:
        resolver.close()


def test_a_literal_address_that_is_not_the_container_s_is_probed_as_it_is() -> None:
    daemon = _Daemon("172.18.0.5")
    resolver = DirectResolver(SimpleNamespace(docker=daemon), "web", 80, literal_ip="172.18.0.99")  # type: ignore[arg-type]
    try:
        assert resolver.resolve() is None
        assert resolver.resolve() is None and daemon.lookups == 1  # decided once
    finally:
        resolver.close()


def _container_probe(daemon: _Daemon, params: dict[str, Any], timeout_s: float = 0.5) -> HttpProbe:
    """An HTTP probe of target ``web``, the container ``web`` of the stand-in ``daemon``."""
    environment = Environment(
        name="unit", kind="test", client="acme", docker=None, hosts={}, participants=(), urls={},
        targets={"web": TargetBinding("web", "container", ("web",))},
    )  # fmt: skip
    spec = ProbeSpec("web", "http", "web", 0.1, timeout_s, frozen_mapping(params))
    return HttpProbe(spec, environment, SimpleNamespace(docker=daemon))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "params", "follows"),
    [
        ("http://127.0.0.1:32768/", {}, True),  # a published port: the container's own address
        ("http://172.18.0.5/", {}, True),  # its address, given literally: its state
        ("https://172.18.0.5:8443/", {}, True),
        ("http://shop.example/", {}, False),  # a name: probed as it is
        ("http://172.18.0.5/", {"direct": False}, False),
        ("https://127.0.0.1:32768/", {}, False),  # TLS through the published port: as it is
    ],
)
def test_which_urls_follow_the_container_target(url: str, params: dict[str, Any], follows: bool) -> None:
    probe = _container_probe(_Daemon("172.18.0.5"), {"url": url, **params})
    assert (probe.direct() is not None) is follows


def test_a_check_of_a_container_that_is_down_does_not_connect() -> None:
    """The address of a stopped container would hold a connect until its deadline (ARP)."""
    daemon = _Daemon("172.18.0.5")
    probe = _container_probe(daemon, {"url": "http://172.18.0.5/"})
    try:
        resolver = probe.direct()
        assert resolver is not None and resolver.resolve() is not None  # learned while running
        daemon.emit("die")
        wait_until("the die event", lambda: resolver.resolve() == DirectAddress("web", "", 80), 2, 0.005)
        started = time.monotonic()
        result = probe.check()
        assert (result.healthy, result.detail) == (False, "container not running")
        assert time.monotonic() - started < 0.05
    finally:
        probe.close()


def _pause_and_unpause(daemon: _Daemon) -> None:
    daemon.emit("pause")
    daemon.emit("unpause")


def test_an_answer_that_spans_a_pause_of_the_container_is_no_recovery(slow_server: str) -> None:
    """A check whose answer was on its way when the container was paused gets it after the
    unpause: the service did not answer in between, so that check says down (at its start)."""
    port = int(slow_server.rsplit(":", 1)[1].strip("/"))  # the 'container' listens here, answers in 0.15 s
    daemon = _Daemon("127.0.0.1")
    daemon.attrs["NetworkSettings"]["Ports"] = {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}]}
    probe = _container_probe(daemon, {"url": "http://127.0.0.1:32768/"}, timeout_s=1.0)
    try:
        assert probe.check().healthy  # learns the container's port, follows its events
        assert probe.check().healthy  # seeded: the container runs
        pausing = threading.Timer(0.05, _pause_and_unpause, args=(daemon,))
        pausing.start()
        result = probe.check()
        pausing.join()
        assert (result.healthy, result.detail) == (False, "the container stopped during the check")
        assert probe.check().healthy  # the next check sees it back
    finally:
        probe.close()


def _timed_check(probe: HttpProbe) -> float:
    started = time.monotonic()
    assert not probe.check().healthy
    return time.monotonic() - started


def test_after_a_check_that_did_not_get_through_a_container_s_connect_gives_up_sooner(
    full_listener: int,
) -> None:
    """A restarted container's address may still be resolving: a hung connect is tried again
    after 25 ms instead of holding the recovery for the 200 ms deadline."""
    daemon = _Daemon("127.0.0.1")  # the 'container' listens on the loopback, its accept queue full
    daemon.attrs["NetworkSettings"]["Ports"] = {
        f"{full_listener}/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}]
    }
    probe = _container_probe(daemon, {"url": "http://127.0.0.1:32768/"}, timeout_s=2.0)
    try:
        assert CONNECT_TIMEOUT_S - 0.02 <= _timed_check(probe) < 1.0  # it was reached last time
        assert RECONNECT_TIMEOUT_S - 0.01 <= _timed_check(probe) < CONNECT_TIMEOUT_S / 2
    finally:
        probe.close()
