"""SSH transport to drill target hosts: verified host keys, argv-only commands, hard deadlines.

Creating an :class:`SshTransport` connects to nothing; :meth:`SshTransport.connect` (or the
first :meth:`SshTransport.run`) opens one paramiko ``Transport`` and verifies the server's
host key against the pinned ``host_key`` or the ``known_hosts`` file *before* authenticating.
An unknown or changed key is refused, never accepted.

Every command is an argv list joined with :func:`shlex.join`, so a value can never become a
second command on the target. It runs as ``timeout -k 1 N <argv>`` (``sudo -n`` before it
when the host says so) because a remote command outlives a closed channel, and the client
waits with an absolute deadline while draining output (``recv_exit_status()`` alone can block
forever on a dead peer).
"""

from __future__ import annotations

import io
import logging
import math
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko

from engine.errors import CommandTimedOut, SecretError, TransportError
from engine.logsetup import get_logger
from engine.model.types import SecretRef, SshHost

log = get_logger(__name__)

PARAMIKO_LOG = "bcdrill.ssh.paramiko"  # paramiko's per-transport log: kept out of the console
logging.getLogger(PARAMIKO_LOG).propagate = False
logging.getLogger(PARAMIKO_LOG).addHandler(logging.NullHandler())

#: Seconds the client waits past the remote ``timeout`` before it gives up on the channel.
DEADLINE_GRACE_S = 2.0
#: Seconds to wait for the end of output after the command reported its exit status.
EOF_LINGER_S = 1.0
#: Seconds between SSH keepalive packets on an idle connection.
KEEPALIVE_S = 15
_TAIL = 2000
_READ = 65536


@dataclass(frozen=True)
class Result:
    """What a remote command did: exit code, decoded output, and how long it took."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0


class UnexpectedExit(TransportError):
    """A command exited non-zero while ``check=True``; carries the :class:`Result`."""

    def __init__(self, host: str, command: str, result: Result) -> None:
        super().__init__(
            f"{host}: command {command!r} exited {result.exit_code}: "
            f"{_tail(result.stderr or result.stdout)!r}"
        )
        self.host = host
        self.command = command
        self.result = result


class HostKeyRejected(TransportError):
    """The server's host key is unknown or differs from the pinned one; nothing was sent."""


def _tail(text: str) -> str:
    return text[-_TAIL:]


# ---------------------------------------------------------------- secrets and keys


def _key_from_text(text: str, origin: str) -> paramiko.PKey:
    errors: list[str] = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except Exception as exc:  # each key class fails differently on foreign key text
            errors.append(f"{cls.__name__}: {type(exc).__name__}")
    raise SecretError(f"{origin} does not hold a usable private key ({'; '.join(errors)})")


def _key_from_path(path: str, origin: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise SecretError(f"{origin}: key file {path!r} does not exist") from None
    except (OSError, ValueError, paramiko.SSHException) as exc:
        raise SecretError(f"{origin}: key file {path!r} cannot be loaded ({type(exc).__name__})") from None


def load_private_key(ref: SecretRef) -> paramiko.PKey:
    """Resolve a key reference: ``file:PATH``, or ``env:VAR`` holding a path or the key text.

    Error messages name the reference, never the secret's value.
    """
    kind, _, rest = ref.ref.partition(":")
    if kind == "file" and rest:
        return _key_from_path(rest, f"secret {ref.ref!r}")
    if kind == "env" and rest:
        value = os.environ.get(rest)
        if value is None:
            raise SecretError(f"secret {ref.ref!r}: environment variable {rest!r} is not set")
        if "PRIVATE KEY-----" in value:
            return _key_from_text(value, f"secret {ref.ref!r}")
        return _key_from_path(value.strip(), f"secret {ref.ref!r}")
    raise SecretError(f"secret reference {ref.ref!r} must be 'file:PATH' or 'env:VAR'")


def parse_host_key(line: str) -> paramiko.PKey:
    """A public key from an OpenSSH line ``TYPE BASE64 [comment]`` (e.g. a pinned host key)."""
    parts = line.split()
    if len(parts) < 2:
        raise TransportError(f"host key {line!r} is not 'TYPE BASE64' (an OpenSSH public key)")
    try:
        return paramiko.PKey.from_type_string(parts[0], _b64decode(parts[1]))
    except Exception as exc:
        raise TransportError(f"host key {line[:40]!r}… cannot be parsed: {exc}") from None


def _b64decode(text: str) -> bytes:
    import base64

    return base64.b64decode(text.encode(), validate=True)


def fingerprint(key: paramiko.PKey) -> str:
    """The OpenSSH-style ``SHA256:…`` fingerprint of a key."""
    return str(key.fingerprint)


# ---------------------------------------------------------------- transport


class SshTransport:
    """One SSH connection to one :class:`~engine.model.types.SshHost`, shared between threads."""

    def __init__(self, host: SshHost) -> None:
        self.host = host
        self._transport: paramiko.Transport | None = None
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """``name (user@address:port)``, for messages."""
        h = self.host
        return f"{h.name} ({h.user}@{h.address}:{h.port})"

    # ------------------------------------------------------------ connect

    def connect(self) -> None:
        """Open and verify the connection if it is not already open."""
        with self._lock:
            if self._transport is not None and self._transport.is_active():
                return
            self._close_locked()
            self._transport = self._open()

    def _open(self) -> paramiko.Transport:
        deadline = time.monotonic() + self.host.connect_timeout_s
        expected = self._expected_keys()
        sock = self._socket(deadline)
        transport = paramiko.Transport(sock)
        # paramiko's transport thread logs every failed handshake as a traceback at ERROR; our
        # TransportError says what went wrong in one line, so its own log stays out of sight.
        transport.set_log_channel(PARAMIKO_LOG)
        try:
            transport.banner_timeout = self.host.connect_timeout_s
            transport.handshake_timeout = self.host.connect_timeout_s
            transport.auth_timeout = self.host.connect_timeout_s
            types = sorted({k.get_name() for k in expected})
            transport.get_security_options().key_types = types
            self._handshake(transport, expected, deadline)
            self._verify(transport, expected)
            self._authenticate(transport)
            transport.set_keepalive(KEEPALIVE_S)
        except TransportError:
            transport.close()
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise TransportError(
                f"{self.label}: SSH connection failed: {type(exc).__name__}: {exc}"
            ) from None
        log.debug("ssh.connected", host=self.host.name)
        return transport

    def _socket(self, deadline: float) -> socket.socket:
        try:
            sock = socket.create_connection((self.host.address, self.host.port), timeout=_remaining(deadline))
        except TimeoutError:
            raise TransportError(
                f"{self.label}: TCP connect timed out after {self.host.connect_timeout_s}s"
            ) from None
        except OSError as exc:
            raise TransportError(f"{self.label}: TCP connect failed: {exc.strerror}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _expected_keys(self) -> list[paramiko.PKey]:
        if self.host.host_key:
            return [parse_host_key(self.host.host_key)]
        if self.host.known_hosts:
            return self._known_hosts_keys(self.host.known_hosts)
        raise TransportError(
            f"{self.label}: no pinned host_key and no known_hosts: refusing to trust any key"
        )

    def _known_hosts_keys(self, path: str) -> list[paramiko.PKey]:
        try:
            keys = paramiko.HostKeys(os.path.expanduser(path))
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"{self.label}: cannot read known_hosts {path!r}: {exc}") from None
        names = [self.host.address] if self.host.port == 22 else []
        names.append(f"[{self.host.address}]:{self.host.port}")
        found = [key for name in names for key in (keys.lookup(name) or {}).values()]
        if not found:
            raise HostKeyRejected(f"{self.label}: host is not in known_hosts {path!r}: refusing to connect")
        return found

    def _handshake(
        self, transport: paramiko.Transport, expected: list[paramiko.PKey], deadline: float
    ) -> None:
        try:
            transport.start_client(timeout=_remaining(deadline))
        except paramiko.ssh_exception.IncompatiblePeer as exc:
            if "host key" not in str(exc):
                raise
            pinned = ", ".join(f"{k.get_name()} {fingerprint(k)}" for k in expected)
            raise HostKeyRejected(
                f"{self.label}: host key mismatch: server offers no host key of the pinned type, "
                f"expected {pinned}; refused before authentication"
            ) from None

    def _verify(self, transport: paramiko.Transport, expected: list[paramiko.PKey]) -> None:
        offered = transport.get_remote_server_key()
        if any(offered == key for key in expected):
            return
        pinned = ", ".join(fingerprint(k) for k in expected)
        raise HostKeyRejected(
            f"{self.label}: host key mismatch: server offered {offered.get_name()} "
            f"{fingerprint(offered)}, expected {pinned}; refused before authentication"
        )

    def _authenticate(self, transport: paramiko.Transport) -> None:
        keys = self._client_keys()
        for key in keys:
            try:
                transport.auth_publickey(self.host.user, key)
            except paramiko.AuthenticationException:
                continue
            if transport.is_authenticated():
                return
        raise TransportError(
            f"{self.label}: authentication as {self.host.user!r} failed ({len(keys)} key(s) tried)"
        )

    def _client_keys(self) -> list[paramiko.PKey]:
        keys: list[paramiko.PKey] = []
        if self.host.key is not None:
            keys.append(load_private_key(self.host.key))
        if self.host.use_agent:
            keys.extend(paramiko.Agent().get_keys())
        if not keys:
            raise TransportError(f"{self.label}: no key and no agent configured")
        return keys

    # ------------------------------------------------------------ commands

    def command_line(self, argv: Sequence[str], timeout: float, sudo: bool) -> str:
        """The exact shell line sent for ``argv``: quoted, under ``timeout`` and maybe sudo."""
        if not argv:
            raise TransportError(f"{self.label}: empty command")
        words = ["timeout", "-k", "1", _seconds(timeout), *[str(a) for a in argv]]
        if sudo:
            words = ["sudo", "-n", *words]
        return shlex.join(words)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        sudo: bool | None = None,
        check: bool = True,
    ) -> Result:
        """Run ``argv`` on the host and return its :class:`Result` by an absolute deadline.

        Raises :class:`UnexpectedExit` for a non-zero exit when ``check``,
        :class:`~engine.errors.CommandTimedOut` past the deadline, and
        :class:`~engine.errors.TransportError` when the host cannot be reached.
        """
        limit = self.host.command_timeout_s if timeout is None else timeout
        line = self.command_line(argv, limit, self.host.sudo if sudo is None else sudo)
        shown = shlex.join(str(a) for a in argv)
        self.connect()
        transport = self._transport
        assert transport is not None
        started = time.monotonic()
        deadline = started + limit + DEADLINE_GRACE_S
        try:
            code, out, err = self._exec(transport, line, deadline)
        except _Deadline as exc:
            self._drop(transport)
            result = Result(-1, exc.out, exc.err, time.monotonic() - started)
            raise self._timed_out(shown, limit, result) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._drop(transport)
            raise TransportError(f"{self.label}: command {shown!r} failed: {exc}") from None
        result = Result(code, out, err, time.monotonic() - started)
        log.debug("ssh.ran", host=self.host.name, exit_code=code, duration_s=result.duration_s)
        if code == 124:
            raise self._timed_out(shown, limit, result)
        if check and code != 0:
            raise UnexpectedExit(self.host.name, shown, result)
        return result

    def _timed_out(self, shown: str, limit: float, result: Result) -> CommandTimedOut:
        exc = CommandTimedOut(
            f"{self.label}: command {shown!r} did not finish within {limit}s "
            f"(output tail: {_tail(result.stdout + result.stderr)!r})"
        )
        exc.result = result  # type: ignore[attr-defined]
        return exc

    def _exec(self, transport: paramiko.Transport, line: str, deadline: float) -> tuple[int, str, str]:
        out, err = bytearray(), bytearray()
        try:
            chan = transport.open_session(timeout=_remaining(deadline))
        except paramiko.SSHException:
            if time.monotonic() >= deadline:
                raise _Deadline(out, err) from None
            raise
        # exec_command waits for the server's reply without a timeout: close on the deadline.
        watchdog = threading.Timer(_remaining(deadline), chan.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            chan.exec_command(line)
            exited_at: float | None = None
            while True:
                _drain(chan, out, err)
                now = time.monotonic()
                if chan.exit_status_ready():
                    # sshd may report the exit before the last output: wait for EOF too, but
                    # not for ever (a background child can hold the output pipe open).
                    exited_at = exited_at or now
                    if chan.eof_received or chan.closed or now - exited_at > EOF_LINGER_S:
                        _drain(chan, out, err)
                        break
                elif chan.closed:
                    raise EOFError("channel closed before the command reported its exit status")
                if now >= deadline:
                    raise _Deadline(out, err)
                select.select([chan], [], [], min(0.1, _remaining(deadline)))
            return chan.recv_exit_status(), _decode(out), _decode(err)
        except paramiko.SSHException:
            if time.monotonic() >= deadline:
                raise _Deadline(out, err) from None
            raise
        finally:
            watchdog.cancel()
            chan.close()

    def open_stream(self, argv: Sequence[str], *, sudo: bool | None = None) -> paramiko.Channel:
        """Start ``argv`` on the host and return its channel as a byte stream (stdin/stdout).

        For long-lived relays such as ``docker system dial-stdio``: no ``timeout`` wrapper;
        the channel is opened within the connect deadline and lives until closed.
        """
        words = [str(a) for a in argv]
        if not words:
            raise TransportError(f"{self.label}: empty command")
        if self.host.sudo if sudo is None else sudo:
            words = ["sudo", "-n", *words]
        self.connect()
        transport = self._transport
        assert transport is not None
        try:
            chan = transport.open_session(timeout=self.host.connect_timeout_s)
            # exec_command waits for the server's reply without a timeout: close on the deadline
            watchdog = threading.Timer(self.host.connect_timeout_s, chan.close)
            watchdog.daemon = True
            watchdog.start()
            try:
                chan.exec_command(shlex.join(words))
            finally:
                watchdog.cancel()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._drop(transport)
            raise TransportError(f"{self.label}: cannot start {shlex.join(words)!r}: {exc}") from None
        return chan

    def _drop(self, transport: paramiko.Transport) -> None:
        """Forget a connection that missed a deadline: the next call reconnects."""
        with self._lock:
            if self._transport is transport:
                self._transport = None
        transport.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class _Deadline(Exception):
    def __init__(self, out: bytearray, err: bytearray) -> None:
        super().__init__("deadline")
        self.out = _decode(out)
        self.err = _decode(err)


def _drain(chan: paramiko.Channel, out: bytearray, err: bytearray) -> None:
    while chan.recv_ready():
        out += chan.recv(_READ)
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(_READ)


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


def _remaining(deadline: float) -> float:
    return max(0.05, deadline - time.monotonic())


def _seconds(value: float) -> str:
    """A positive ``timeout`` duration: whole seconds when whole, else a decimal."""
    if value <= 0:
        raise TransportError(f"command timeout must be positive, got {value!r}")
    if value == math.floor(value):
        return str(int(value))
    return f"{value:.3f}"
