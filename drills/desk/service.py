"""The drill desk as a run service: uvicorn in a background thread for the drill's duration.

Registered as run service ``desk`` (entry point group ``bcdrill.services``); the engine starts
it when ``RunOptions.desk`` is ``"HOST:PORT"`` (port 0 picks a free port). Once listening it
writes ``<run>/desk.json`` with its URL, so ``bcdrill ack --desk`` and simulated responders
can find it. The access log is off: no request line (which could carry a token) is logged.
Behind a TLS-terminating proxy, set ``BCDRILL_BEHIND_TLS=1`` (cookies get ``Secure``) and
``BCDRILL_TRUSTED_PROXIES`` (see :mod:`engine.web`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path

import uvicorn

from drills.desk.app import Desk, Limits, create_app
from drills.desk.participants import ParticipantStore, client_slug
from drills.desk.recording import DeskRecorder
from drills.desk.tokens import TokenBook
from drills.desk.webhooks import WebhookMapping, WebhookVerifier, load_webhooks, resolve_secret, sidecar_path
from engine.errors import InputError, PreflightError
from engine.home import home
from engine.logsetup import get_logger
from engine.logsetup import preload as preload_logging
from engine.run.responses import ResponderContext
from engine.web import ProxySettings, listening_socket

log = get_logger(__name__)

DESK_FILE = "desk.json"
RUN_TOKENS_FILE = "desk-participants.json"
START_TIMEOUT_S = 10.0


def parse_bind(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8765"`` → ``("127.0.0.1", 8765)``; ``[::1]:8765`` works too."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"desk address {value!r} must be HOST:PORT, e.g. '127.0.0.1:8765'")
    return host, int(port)


def run_token_store(context: ResponderContext) -> ParticipantStore:
    """Per-run tokens (hashes) for simulated people, kept in the run folder."""
    return ParticipantStore(context.client, context.run_dir / RUN_TOKENS_FILE)


def webhook_settings_path(context: ResponderContext) -> Path | None:
    """Where this run's webhook mapping is: the environment's sidecar ``<env>.webhooks.yaml``
    (when the engine passes ``environment_path``), or ``$BCDRILL_HOME/webhooks/<client-slug>.yaml``;
    None when there is none."""
    env_path = context.options.get("environment_path")
    candidates = [sidecar_path(Path(env_path))] if env_path else []
    candidates.append(home() / "webhooks" / f"{client_slug(context.client)}.yaml")
    return next((p for p in candidates if p.is_file()), None)


def desk_url(run_dir: Path) -> str | None:
    """The URL of a live run's desk, from ``<run>/desk.json`` (None when it has no desk)."""
    try:
        data = json.loads((run_dir / DESK_FILE).read_text())
    except (OSError, ValueError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else None


class DrillDesk:
    """Hosts the drill desk for one run; ``start()`` returns once it accepts connections."""

    def __init__(self, context: ResponderContext, limits: Limits | None = None) -> None:
        self._context = context
        self._host, self._port = parse_bind(context.options.get("desk") or "")
        hooks = self._load_hooks()
        secrets = {name: resolve_secret(hook.secret) for name, hook in hooks.items()}
        tokens = TokenBook([ParticipantStore(context.client), run_token_store(context)])
        self.proxy = ProxySettings.from_env()
        verifier = WebhookVerifier(hooks, secrets)
        self.desk = Desk(DeskRecorder(context), tokens, verifier, limits or Limits(), proxy=self.proxy)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def _load_hooks(self) -> dict[str, WebhookMapping]:
        path = webhook_settings_path(self._context)
        if path is None:
            return {}
        hooks = load_webhooks(path)
        log.info("desk.webhooks", file=str(path), hooks=sorted(hooks))
        return hooks

    def start(self) -> None:
        """Bind, serve in a background thread, and wait until it is ready."""
        preload_logging()  # no request waits for the logger's import
        sock = self._bind()
        config = uvicorn.Config(
            create_app(self.desk),
            log_config=None,
            access_log=False,
            log_level="warning",
            lifespan="off",
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
            **self.proxy.uvicorn_options(),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="drill-desk", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise PreflightError(f"the drill desk did not start on {self._host}:{self._port}")
            time.sleep(0.01)
        port = sock.getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{host}:{port}"
        self._write_desk_file()
        log.info("desk.started", url=self.url, run_id=self._context.run_id)

    def stop(self) -> None:
        """Stop serving (returns within a few seconds)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            (self._context.run_dir / DESK_FILE).unlink()
        log.info("desk.stopped", run_id=self._context.run_id)

    def _bind(self) -> socket.socket:
        sock = listening_socket(self._host, self._port, "the drill desk")
        sock.listen(128)
        return sock

    def _write_desk_file(self) -> None:
        path = self._context.run_dir / DESK_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"url": self.url, "pid": os.getpid()}, handle)
