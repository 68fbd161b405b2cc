"""Fetch an SSH server's host keys for pinning — shown to a person, never trusted silently.

Only the key exchange runs: no authentication is attempted and nothing is sent to the host
beyond the SSH handshake. The result is each offered key with its ``SHA256:`` fingerprint and
the exact ``host_key:`` line for the environment file; the person compares the fingerprint
with the one the host's owner reads on the host's console (``ssh-keygen -lf``) before pasting.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

import paramiko

from engine.errors import InputError, TransportError

__all__ = ["KEY_TYPES", "ScannedKey", "parse_host_port", "scan_host_key"]

#: Host key types asked for, strongest first (the first one offered is the recommended pin).
KEY_TYPES: tuple[str, ...] = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


@dataclass(frozen=True)
class ScannedKey:
    """One host key a server offered."""

    address: str
    port: int
    key_type: str  # e.g. ssh-ed25519 (RSA keys are ssh-rsa whatever signature was negotiated)
    base64: str
    fingerprint: str  # SHA256:…

    @property
    def pin(self) -> str:
        """The value of ``host_key:`` in the environment file: ``TYPE BASE64``."""
        return f"{self.key_type} {self.base64}"

    @property
    def known_hosts_line(self) -> str:
        """The same key as a known_hosts line (``[addr]:port`` when the port is not 22)."""
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{name} {self.pin}"


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT`` → (address, port); port 22 by default."""
    host, port_text = text, "22"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"{text!r} is not HOST[:PORT]")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host or not (_HOST.fullmatch(host) or ":" in host):
        raise InputError(f"{text!r} is not HOST[:PORT] (e.g. 10.0.0.5 or app1.example:2222)")
    if not port_text.isdecimal() or not 1 <= int(port_text) <= 65535:
        raise InputError(f"{text!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def scan_host_key(address: str, port: int = 22, timeout_s: float = 5.0) -> list[ScannedKey]:
    """Every host key of :data:`KEY_TYPES` the server at ``address:port`` offers (strongest first).

    Raises :class:`TransportError` when the server cannot be reached or offers none of them.
    """
    keys: list[ScannedKey] = []
    last_error = ""
    for key_type in KEY_TYPES:
        try:
            key = _offered_key(address, port, key_type, timeout_s)
        except _NotOffered as exc:
            last_error = str(exc)
            continue
        scanned = ScannedKey(address, port, key.get_name(), key.get_base64(), str(key.fingerprint))
        if all(k.pin != scanned.pin for k in keys):
            keys.append(scanned)
    if not keys:
        raise TransportError(f"{address}:{port} offered no host key of {', '.join(KEY_TYPES)}: {last_error}")
    return keys


class _NotOffered(Exception):
    """The server would not negotiate this key type."""


def _offered_key(address: str, port: int, key_type: str, timeout_s: float) -> paramiko.PKey:
    try:
        sock = socket.create_connection((address, port), timeout=timeout_s)
    except TimeoutError:
        raise TransportError(f"{address}:{port}: TCP connect timed out after {timeout_s:g}s") from None
    except OSError as exc:
        raise TransportError(f"{address}:{port}: TCP connect failed: {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout_s
        transport.handshake_timeout = timeout_s
        transport.get_security_options().key_types = [key_type]
        transport.start_client(timeout=timeout_s)
        return transport.get_remote_server_key()
    except paramiko.SSHException as exc:
        if "Incompatible" in str(exc) or "no acceptable" in str(exc).lower():
            raise _NotOffered(f"{key_type}: {exc}") from None
        raise TransportError(f"{address}:{port}: SSH handshake failed: {exc}") from None
    except (OSError, EOFError) as exc:
        raise TransportError(f"{address}:{port}: SSH handshake failed: {type(exc).__name__}: {exc}") from None
    finally:
        transport.close()
