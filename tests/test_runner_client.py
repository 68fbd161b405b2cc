"""The long-lived runner's client side, as pure logic (the real daemon: tests/test_local_runner.py):
which path ``bcdrill run`` takes, the environment fingerprint, the runner's note, following a
journal that is being written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from engine.cli import _runner_mode
from engine.errors import InputError
from engine.orchestration import local_runner
from engine.orchestration.local_runner import RunnerInfo, environment_fingerprint, live_runner, write_info
from engine.orchestration.thin_client import _Follow, _print_new_records


def test_the_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCDRILL_RUNNER", "0")
    assert _runner_mode(True) == "on"
    monkeypatch.setenv("BCDRILL_RUNNER", "1")
    assert _runner_mode(False) == "off"


@pytest.mark.parametrize(
    ("value", "mode"), [("1", "on"), ("yes", "on"), ("0", "off"), ("auto", "auto"), ("", "first-use")]
)
def test_bcdrill_runner_chooses_the_path(monkeypatch: pytest.MonkeyPatch, value: str, mode: str) -> None:
    monkeypatch.setenv("BCDRILL_RUNNER", value)
    assert _runner_mode(None) == mode


def test_default_is_first_use_and_a_bad_value_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BCDRILL_RUNNER", raising=False)
    assert _runner_mode(None) == "first-use"
    monkeypatch.setenv("BCDRILL_RUNNER", "sometimes")
    with pytest.raises(InputError, match="BCDRILL_RUNNER must be 1, 0 or auto"):
        _runner_mode(None)


def test_fingerprint_covers_what_a_drill_reads_only() -> None:
    base = {"BCDRILL_HOME": "/h", "PATH": "/bin"}
    same = environment_fingerprint(base)
    assert environment_fingerprint({**base, "PATH": "/usr/bin", "BCDRILL_RUNNER": "1"}) == same
    assert environment_fingerprint({**base, "BCDRILL_PDF": "off"}) != same
    assert environment_fingerprint({**base, "PREFECT_API_URL": "http://127.0.0.1:1/api"}) != same


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_note_of_a_dead_runner_is_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path))
    write_info(RunnerInfo(_dead_pid(), "http://127.0.0.1:9/api", "d", 900.0, "f", time.time(), True))
    assert local_runner.info_file().exists()
    assert live_runner() is None
    assert not local_runner.info_file().exists()


def test_following_prints_complete_records_only(tmp_path: Path) -> None:
    journal = tmp_path / "run" / "journal.jsonl"
    journal.parent.mkdir()
    seen: list[Mapping[str, Any]] = []
    info = RunnerInfo(0, "http://127.0.0.1:9/api", "d", 900.0, "f", 0.0, True)
    run = _Follow(info, "flow-run", journal.parent, seen.append, print)
    _print_new_records(run)  # no journal yet: nothing, no error
    first, second = json.dumps({"seq": 0}) + "\n", json.dumps({"seq": 1}) + "\n"
    journal.write_text(first + second[:5])  # the writer is half-way through the second record
    _print_new_records(run)
    assert seen == [{"seq": 0}]
    with open(journal, "a") as handle:
        handle.write(second[5:])
    _print_new_records(run)
    assert seen == [{"seq": 0}, {"seq": 1}]


class _PollingRunner:
    """Stands in for Prefect's runner: counts the polls it is asked for."""

    started = True

    def __init__(self) -> None:
        self.polls = 0

    async def _get_and_submit_flow_runs(self) -> None:
        self.polls += 1


def test_a_submitting_client_wakes_the_runner_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The client's datagram on the runner's socket makes it poll now (real Unix socket)."""
    import asyncio

    from engine.orchestration.daemon import _wake_ups
    from engine.orchestration.local_runner import wake_runner, wake_socket

    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path))
    wake_socket().parent.mkdir(parents=True)
    runner = _PollingRunner()

    async def scenario() -> int:
        listener = asyncio.ensure_future(_wake_ups(runner))
        for _ in range(200):  # the socket is bound once the listener ran
            if wake_socket().exists():
                break
            await asyncio.sleep(0.01)
        wake_runner()
        wake_runner()
        for _ in range(200):
            if runner.polls == 2:
                break
            await asyncio.sleep(0.01)
        listener.cancel()
        return runner.polls

    assert asyncio.run(scenario()) == 2


def test_waking_no_runner_is_harmless(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from engine.orchestration.local_runner import wake_runner

    monkeypatch.setenv("BCDRILL_HOME", str(tmp_path))
    wake_runner()  # no socket: the runner's own poll takes the run


def test_a_forked_drill_starts_with_the_standard_parts_loaded() -> None:
    """The runner's forkserver preloads the standard debriefer (its module is in memory)."""
    from importlib.metadata import entry_points

    (standard,) = entry_points(group="bcdrill.debriefers", name="standard")
    probe = (
        "import sys, engine.orchestration.forked_drills, prefect.flow_engine as f;"
        f"print({standard.module!r} in sys.modules, f.observe_flow_run_suspension.__module__)"
    )
    argv = [sys.executable, "-c", probe]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["True", "engine.orchestration.forked_drills"], result.stderr[-2000:]


@pytest.fixture
def template(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A stand-in database template, and no database configured elsewhere."""
    from engine.orchestration import prefect_database

    path = tmp_path / "template.db"
    path.write_bytes(b"migrated")
    monkeypatch.setattr(prefect_database, "template_path", lambda: path)
    for name in ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.mark.usefixtures("template")
def test_a_new_runner_home_starts_from_the_migrated_template(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.orchestration import prefect_database

    home = tmp_path / "prefect"
    assert prefect_database.seed(home) and (home / "prefect.db").read_bytes() == b"migrated"
    (home / "prefect.db").write_bytes(b"the runner's own runs")
    assert not prefect_database.seed(home)  # a database in use is never replaced
    assert (home / "prefect.db").read_bytes() == b"the runner's own runs"
    other = tmp_path / "other"
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://db/prefect")
    assert not prefect_database.seed(other) and not other.exists()


@pytest.mark.usefixtures("template")
def test_a_temporary_server_on_a_new_default_database_starts_from_the_template(tmp_path: Path) -> None:
    """``bcdrill run --in-process`` (and ``recover``) with a new Prefect home: its temporary
    server's database is the template's copy; a database configured elsewhere is left alone."""
    from prefect.settings import PREFECT_HOME, PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    from engine.orchestration import prefect_database

    home = tmp_path / "home"
    default_database = {PREFECT_SERVER_DATABASE_CONNECTION_URL}
    with temporary_settings({PREFECT_HOME: str(home)}, restore_defaults=default_database):
        assert prefect_database.seed_default_database()
    assert (home / "prefect.db").read_bytes() == b"migrated"
    elsewhere = tmp_path / "elsewhere"
    url = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
    with temporary_settings({PREFECT_HOME: str(elsewhere), PREFECT_SERVER_DATABASE_CONNECTION_URL: url}):
        assert not prefect_database.seed_default_database()
    assert not (elsewhere / "prefect.db").exists() and not (tmp_path / "own.db").exists()


def test_set_up_makes_a_template_prefect_can_start_from() -> None:
    """scripts/setup.sh made it: a real migrated database of this Prefect version."""
    import sqlite3

    from engine.orchestration.prefect_database import template_path

    path = template_path()
    assert path.exists(), "run scripts/setup.sh: it migrates the runner's database template"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (revision,) = db.execute("select version_num from alembic_version").fetchone()
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
        assert revision and {"flow_run", "deployment"} <= tables
        assert db.execute("select count(*) from flow_run").fetchone() == (0,)


def test_prefect_clients_share_one_verifying_tls_context_per_settings() -> None:
    """engine.flow makes Prefect's clients reuse the TLS context Prefect would build: verifying
    by default, and never the same object as a context Prefect loosens (skip-verify)."""
    import ssl

    import certifi
    import prefect.client.orchestration

    import engine.flow  # noqa: F401 - shares the contexts when imported

    shim = prefect.client.orchestration.ssl
    verifying = shim.create_default_context(cafile=certifi.where())
    assert verifying is shim.create_default_context(cafile=certifi.where())
    assert verifying.verify_mode == ssl.CERT_REQUIRED and verifying.check_hostname
    assert shim.create_default_context() is not verifying
    assert shim.SSLContext is ssl.SSLContext and shim.CERT_NONE == ssl.CERT_NONE


def test_the_tls_context_built_ahead_is_the_one_prefects_clients_load(tmp_path: Path) -> None:
    """The context built when engine.flow is imported is for the CA file Prefect's clients
    load (its setting, which SSL_CERT_FILE sets, or certifi's): a new client reuses it."""
    import prefect.client.orchestration
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, temporary_settings

    import engine.flow  # noqa: F401 - shares the contexts when imported
    from engine.orchestration.prefect_clients import _prefect_ca_file

    create: Any = prefect.client.orchestration.ssl.create_default_context  # functools.cache'd
    built = create.cache_info().currsize
    with prefect.client.orchestration.SyncPrefectClient("http://127.0.0.1:9/api"):
        pass
    assert create.cache_info().currsize == built, "a Prefect client built a TLS context of its own"
    bundle = tmp_path / "ca.pem"
    with temporary_settings({PREFECT_API_SSL_CERT_FILE: str(bundle)}):
        assert _prefect_ca_file() == str(bundle)


def test_a_served_flow_run_gets_its_settings_from_its_environment_only() -> None:
    """What the runner hands a served drill's process: the serialized context without the
    settings (the process builds them once, from the environment Prefect exports to it) and
    everything else Prefect serializes."""
    script = (
        "import json, prefect.flow_engine as f\n"
        "from engine.orchestration.warm import fork_served_flow_runs\n"
        "full = f.serialize_context()\n"
        "fork_served_flow_runs()\n"
        "handed = f.serialize_context()\n"
        "print(json.dumps([bool(full['settings_context']), handed['settings_context'],\n"
        "                  sorted(full), sorted(handed)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    had_settings, handed_settings, full_keys, handed_keys = json.loads(out.stdout.strip().splitlines()[-1])
    assert had_settings and handed_settings == {} and handed_keys == full_keys


class _StandInApi:
    """A loopback HTTP server standing in for the runner's Prefect API: answers a flow run's
    state from ``states`` (an int is an HTTP error status) and notes every request."""

    def __init__(self, states: list[str | int]) -> None:
        import http.server
        import threading

        api = self
        self.states = states
        self.requests: list[tuple[str, str, Any]] = []
        self.authorizations: list[str | None] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(("GET", self.path, None))
                api.authorizations.append(self.headers.get("Authorization"))
                state = api.states.pop(0) if len(api.states) > 1 else api.states[0]
                if isinstance(state, int):
                    self.send_error(state)
                    return
                self._answer({"id": "flow-run", "state": {"type": state, "name": state.title()}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(("POST", self.path, body))
                self._answer({"status": "ACCEPT"})

            def _answer(self, data: Mapping[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def info(self, pid: int) -> RunnerInfo:
        return RunnerInfo(
            pid, f"http://127.0.0.1:{self.server.server_address[1]}/api", "d", 900.0, "f", 0.0, True
        )

    def posted_states(self) -> list[str]:
        return [body["state"]["type"] for method, _, body in self.requests if method == "POST"]


@pytest.fixture
def stand_in_api() -> Any:
    apis: list[_StandInApi] = []

    def make(states: list[str | int]) -> _StandInApi:
        apis.append(_StandInApi(states))
        return apis[-1]

    yield make
    for api in apis:
        api.server.shutdown()


def test_a_failed_state_poll_is_a_blip_while_the_runner_lives(tmp_path: Path, stand_in_api: Any) -> None:
    """The client's exit would abort the drill: one failed poll must not end the follow."""
    from engine.errors import RunnerError
    from engine.orchestration.thin_client import _ended

    api = stand_in_api([500, "RUNNING", "COMPLETED"])
    run = _Follow(api.info(os.getpid()), "flow-run", tmp_path, print, print)
    assert [_ended(run), _ended(run), _ended(run)] == [False, False, True]
    gone = _Follow(stand_in_api([500]).info(_dead_pid()), "flow-run", tmp_path, print, print)
    with pytest.raises(RunnerError, match="answered 500"):
        _ended(gone)


def test_ctrl_c_cancels_a_run_not_yet_taken_outright(tmp_path: Path, stand_in_api: Any) -> None:
    from engine.orchestration.thin_client import _interrupt

    api = stand_in_api(["SCHEDULED"])
    notices: list[str] = []
    _interrupt(_Follow(api.info(os.getpid()), "flow-run", tmp_path, print, notices.append))
    assert api.posted_states() == ["CANCELLED"], "a run no process holds is never left Cancelling"
    running = stand_in_api(["RUNNING"])
    _interrupt(_Follow(running.info(os.getpid()), "flow-run", tmp_path, print, notices.append))
    assert running.posted_states() == ["CANCELLING"]


def test_ctrl_c_after_the_drill_ended_leaves_its_scorecard_to_finish(
    tmp_path: Path, stand_in_api: Any
) -> None:
    from engine.orchestration.thin_client import _interrupt

    api = stand_in_api(["RUNNING"])
    (tmp_path / "journal.jsonl").write_text(json.dumps({"seq": 9, "type": "run.ended"}) + "\n")
    notices: list[str] = []
    run = _Follow(api.info(os.getpid()), "flow-run", tmp_path, print, notices.append)
    _print_new_records(run)
    _interrupt(run)
    assert api.posted_states() == [], "cancelling now would cut off the debrief and the signature"
    assert "scorecard is being written" in notices[-1]


def test_a_runner_that_cannot_ask_its_api_counts_itself_busy() -> None:
    """The idle watch asks whether a drill runs; an unanswered question must neither end the
    watch (the runner would never leave idle) nor let the runner leave mid-drill."""
    import asyncio
    import socket
    import uuid

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from engine.orchestration.daemon import _busy

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        assert asyncio.run(_busy(str(uuid.uuid4()))) is True


def test_the_api_url_of_the_callers_prefect_profile_is_read_and_fingerprinted(tmp_path: Path) -> None:
    from engine.orchestration.local_runner import profile_api_url

    (tmp_path / ".prefect").mkdir()
    (tmp_path / ".prefect" / "profiles.toml").write_text(
        'active = "msp"\n[profiles.msp]\nPREFECT_API_URL = "https://prefect.msp.example/api"\n'
        '[profiles.other]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
    )
    env = {"HOME": str(tmp_path)}
    assert profile_api_url(env) == "https://prefect.msp.example/api"
    assert profile_api_url({**env, "PREFECT_PROFILE": "other"}) == "http://127.0.0.1:4200/api"
    assert profile_api_url({**env, "PREFECT_HOME": str(tmp_path / "elsewhere")}) is None
    assert profile_api_url({"HOME": str(tmp_path / "nobody")}) is None
    assert environment_fingerprint(env) != environment_fingerprint({"HOME": str(tmp_path / "nobody")})


def test_the_client_sends_a_configured_apis_credentials(
    tmp_path: Path, stand_in_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner on a configured, secured Prefect server: the client must authenticate as
    Prefect's own client does (environment first, else the active profile)."""
    from engine.orchestration.thin_client import _api, _settings

    for name in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_HOME", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    api = stand_in_api(["RUNNING"])
    info = api.info(os.getpid())

    def ask() -> None:  # as a new command would: its settings are read once per command
        _settings.cache_clear()
        _api(info, "GET", "flow_runs/x")

    ask()
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:pass")
    ask()
    (tmp_path / ".prefect").mkdir()
    (tmp_path / ".prefect" / "profiles.toml").write_text(
        'active = "msp"\n[profiles.msp]\nPREFECT_API_KEY = "k-1"\n'
    )
    ask()  # the profile's key wins over basic auth, as in Prefect
    _settings.cache_clear()
    assert api.authorizations == [None, "Basic YWRtaW46cGFzcw==", "Bearer k-1"]


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prefect.test")])
    now = datetime.datetime.now(datetime.UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(loopback, False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_the_client_verifies_a_configured_api_against_its_ca_file(
    tmp_path: Path, stand_in_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    from engine.errors import RunnerError
    from engine.orchestration import thin_client

    cert_file, key_file = _self_signed(tmp_path)
    api = stand_in_api(["RUNNING"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    api.server.socket = context.wrap_socket(api.server.socket, server_side=True)
    info = api.info(os.getpid())
    info = RunnerInfo(info.pid, info.url.replace("http:", "https:"), "d", 900.0, "f", 0.0, False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_SSL_CERT_FILE", raising=False)
    thin_client._opener.cache_clear()
    thin_client._settings.cache_clear()
    with pytest.raises(RunnerError, match="CERTIFICATE_VERIFY_FAILED"):
        thin_client._api(info, "GET", "flow_runs/x")
    monkeypatch.setenv("PREFECT_API_SSL_CERT_FILE", str(cert_file))
    thin_client._opener.cache_clear()
    thin_client._settings.cache_clear()
    assert thin_client._api(info, "GET", "flow_runs/x")["state"]["type"] == "RUNNING"
    thin_client._opener.cache_clear()
    thin_client._settings.cache_clear()
