"""Signed service-desk webhooks: which ticket records which step, and how deliveries are checked.

A service-desk tool POSTs JSON to ``/hooks/<name>`` with three headers:

* ``X-Bcdrill-Timestamp``: Unix seconds when it signed the delivery;
* ``X-Bcdrill-Signature``: ``sha256=<hex>``, HMAC-SHA256 with the hook's shared secret over
  ``<timestamp>.<raw body>``;
* ``X-Bcdrill-Delivery``: a unique id per delivery (retries reuse it).

A delivery is accepted once: the timestamp must be within ±300 s, and both the delivery id
and the signature are remembered (so a replay under a new delivery id is caught too).

The mapping lives in a sidecar file next to the environment, ``<env>.webhooks.yaml`` (the
playbook and environment schemas stay as they are)::

    format: desk-webhooks/v1
    hooks:
      servicedesk:
        secret: env:SERVICEDESK_HOOK_SECRET     # or file:/path; never the secret itself
        step: client.report
        match: {"ticket.subject": "{correlation}"}    # field path → value, all must hold
        time_field: ticket.created_at                 # optional: the ticket's own time
        by_field: ticket.requester                    # optional: who raised it

A ``match`` value matches a text field that contains it, or a list field that has it as an
element. ``{correlation}`` and ``{run_id}`` are replaced by the run's values.

``preset: jira | servicenow | zendesk | freshdesk`` supplies ``match``, ``time_field`` and
``by_field`` for that tool's usual ticket-created payload (:data:`PRESETS`); any of the three
given beside it wins. The HMAC check is the same for every hook.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import InputError, SecretError
from engine.logsetup import register_secret
from engine.model.types import SecretRef, frozen_mapping
from engine.spec.yamlsafe import YamlDocument, load_yaml
from engine.web import json_object

WEBHOOKS_FORMAT = "desk-webhooks/v1"
TIMESTAMP_HEADER = "x-bcdrill-timestamp"
SIGNATURE_HEADER = "x-bcdrill-signature"
DELIVERY_HEADER = "x-bcdrill-delivery"
WINDOW_S = 300.0
MAX_REMEMBERED = 10_000
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_STEP = re.compile(r"^(msp|client)\.[A-Za-z0-9_-]+$")
_HOOK_KEYS = frozenset({"secret", "step", "match", "time_field", "by_field", "preset"})


@dataclass(frozen=True)
class Preset:
    """Where a service-desk tool's ticket-created payload keeps the subject, time and requester."""

    match: Mapping[str, str]
    time_field: str | None
    by_field: str | None
    naive_utc: bool = False  # the tool writes UTC times without a zone


#: Field paths of common service-desk payloads (see docs/exercise.md for each tool's body).
PRESETS: Mapping[str, Preset] = {
    # Jira (Cloud/Data Center) webhook, event jira:issue_created
    "jira": Preset(
        {"issue.fields.summary": "{correlation}"}, "issue.fields.created", "issue.fields.reporter.displayName"
    ),
    # ServiceNow outbound REST message from a business rule on incident insert (glide UTC times)
    "servicenow": Preset(
        {"short_description": "{correlation}"}, "sys_created_on", "caller_id", naive_utc=True
    ),
    # Zendesk event webhook, type zen:event-type:ticket.created
    "zendesk": Preset({"detail.subject": "{correlation}"}, "detail.created_at", "detail.requester_id"),
    # Freshdesk automation rule "Trigger webhook", simple (freshdesk_webhook) content: its
    # placeholders carry no machine-readable time, so the desk's receipt time counts
    "freshdesk": Preset(
        {"freshdesk_webhook.ticket_subject": "{correlation}"}, None, "freshdesk_webhook.ticket_contact_name"
    ),
}


@dataclass(frozen=True)
class WebhookMapping:
    """One named hook: its secret reference and which deliveries record which step."""

    name: str
    secret: SecretRef
    step: str
    match: Mapping[str, str]
    time_field: str | None = None
    by_field: str | None = None
    naive_utc: bool = False  # a ticket time without a zone is UTC (ServiceNow)


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: its hook, id and parsed JSON payload."""

    hook: WebhookMapping
    delivery_id: str
    payload: Mapping[str, Any]


def correlation_code(run_id: str) -> str:
    """The short code a drill's tickets carry so the desk can tell them apart: ``BCD-1A2B3C4D``."""
    return "BCD-" + hashlib.sha256(run_id.encode()).hexdigest()[:8].upper()


def sidecar_path(environment_path: Path) -> Path:
    """``<env>.webhooks.yaml`` next to an environment file (``lab.yaml`` → ``lab.webhooks.yaml``)."""
    stem = environment_path.name
    for suffix in (".yaml", ".yml"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return environment_path.with_name(f"{stem}.webhooks.yaml")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Bcdrill-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def resolve_secret(ref: SecretRef) -> bytes:
    """Read a secret by reference (``env:VAR`` or ``file:PATH``) and register it for redaction."""
    kind, _, rest = ref.ref.partition(":")
    if kind == "env" and rest:
        value = os.environ.get(rest)
        if value is None:
            raise SecretError(f"secret {ref.ref!r}: environment variable {rest!r} is not set")
    elif kind == "file" and rest:
        try:
            value = Path(rest).read_text().strip()
        except OSError as exc:
            raise SecretError(f"secret {ref.ref!r}: cannot read {rest!r} ({exc.strerror})") from None
    else:
        raise SecretError(f"secret reference {ref.ref!r} must be 'env:VAR' or 'file:PATH'")
    if len(value) < 16:
        raise SecretError(f"secret {ref.ref!r} is too short: use at least 16 characters")
    register_secret(value)
    return value.encode()


# ---------------------------------------------------------------- loading


def load_webhooks(path: Path) -> dict[str, WebhookMapping]:
    """Read and check a ``desk-webhooks/v1`` file; every problem is reported with its line."""
    doc = load_yaml(path)
    problems = []
    if doc.data.get("format") != WEBHOOKS_FORMAT:
        problems.append(doc.problem(("format",), f"must be {WEBHOOKS_FORMAT!r}"))
    hooks = doc.data.get("hooks")
    if not isinstance(hooks, dict) or not hooks:
        problems.append(doc.problem(("hooks",), "must map hook names to their settings"))
        raise InputError(f"{path}: invalid webhook settings", tuple(problems))
    mappings: dict[str, WebhookMapping] = {}
    for name, spec in hooks.items():
        found = _hook_problems(doc, name, spec)
        problems.extend(found)
        if not found:
            mappings[name] = _build_hook(name, spec)
    if problems:
        raise InputError(f"{path}: invalid webhook settings", tuple(problems))
    return mappings


def _hook_problems(doc: YamlDocument, name: str, spec: Any) -> list[Any]:
    where = ("hooks", name)
    if not _NAME.match(str(name)):
        return [doc.problem(where, "hook names are lower-case letters, digits, '-' and '_'", at_key=True)]
    if not isinstance(spec, dict):
        return [doc.problem(where, "must be a mapping with secret, step and match")]
    problems = [doc.problem((*where, k), "unknown field", at_key=True) for k in spec if k not in _HOOK_KEYS]
    secret = spec.get("secret")
    if not (isinstance(secret, str) and re.match(r"^(env|file):.+", secret)):
        problems.append(doc.problem((*where, "secret"), "must be a reference like 'env:VAR' or 'file:PATH'"))
    if not (isinstance(spec.get("step"), str) and _STEP.match(spec["step"])):
        problems.append(doc.problem((*where, "step"), "must be a step key like 'client.report'"))
    preset = spec.get("preset")
    if preset is not None and preset not in PRESETS:
        known = ", ".join(PRESETS)
        problems.append(doc.problem((*where, "preset"), f"unknown preset {preset!r} (known: {known})"))
    match = spec.get("match")
    given = isinstance(match, dict) and match and all(isinstance(v, str) for v in match.values())
    if not given and (match is not None or preset is None):
        problems.append(doc.problem((*where, "match"), "must map payload field paths to text values"))
    for key in ("time_field", "by_field"):
        if key in spec and not isinstance(spec[key], str):
            problems.append(
                doc.problem((*where, key), "must be a payload field path like 'ticket.created_at'")
            )
    return problems


def _build_hook(name: str, spec: dict[str, Any]) -> WebhookMapping:
    preset = PRESETS.get(spec.get("preset", ""), Preset({}, None, None))
    return WebhookMapping(
        name=name,
        secret=SecretRef(spec["secret"]),
        step=spec["step"],
        match=frozen_mapping(spec.get("match") or preset.match),
        time_field=spec.get("time_field", preset.time_field),
        by_field=spec.get("by_field", preset.by_field),
        naive_utc=preset.naive_utc and "time_field" not in spec,
    )


# ---------------------------------------------------------------- verifying


class WebhookVerifier:
    """Checks signature, time window and uniqueness of deliveries for a set of hooks."""

    def __init__(
        self,
        hooks: Mapping[str, WebhookMapping],
        secrets: Mapping[str, bytes],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._hooks = dict(hooks)
        self._secrets = dict(secrets)
        self._wall = wall
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, name: str, headers: Mapping[str, str], body: bytes) -> Delivery | None:
        """The delivery if it is authentic, fresh and new; None otherwise (never says why)."""
        hook = self._hooks.get(name)
        secret = self._secrets.get(name, b"\0" * 32)
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        given = headers.get(SIGNATURE_HEADER, "")
        delivery_id = headers.get(DELIVERY_HEADER, "")
        expected = sign(secret, timestamp, body)  # computed even for unknown hooks: same work
        authentic = hmac.compare_digest(expected.encode(), given.encode())
        if hook is None or not authentic or not self._fresh(timestamp) or not delivery_id:
            return None
        payload = json_object(body)
        if payload is None or not self._first_time(name, delivery_id, given):
            return None
        return Delivery(hook, delivery_id[:200], payload)

    def _fresh(self, timestamp: str) -> bool:
        # ASCII digits only: '²'.isdigit() is True but int('²') fails, and a few thousand
        # digits make int() raise too.
        if not _TIMESTAMP.fullmatch(timestamp):
            return False
        return abs(self._wall() - int(timestamp)) <= WINDOW_S

    def _first_time(self, name: str, delivery_id: str, signature: str) -> bool:
        now = self._wall()
        keys = (f"id:{name}:{delivery_id}", f"sig:{signature}")
        with self._lock:
            while self._seen and (len(self._seen) > MAX_REMEMBERED or next(iter(self._seen.values())) < now):
                self._seen.popitem(last=False)
            if any(k in self._seen for k in keys):
                return False
            for key in keys:
                self._seen[key] = now + 2 * WINDOW_S  # after that the timestamp is stale anyway
        return True


# ---------------------------------------------------------------- mapping


def field(payload: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` in ``payload`` (None when any part is missing)."""
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def matches(hook: WebhookMapping, payload: Mapping[str, Any], run_id: str) -> bool:
    """True when every ``match`` rule of ``hook`` holds for ``payload`` in run ``run_id``."""
    for path, wanted in hook.match.items():
        expected = wanted.replace("{correlation}", correlation_code(run_id)).replace("{run_id}", run_id)
        value = field(payload, path)
        if isinstance(value, str) and expected in value:
            continue
        if isinstance(value, list) and expected in value:
            continue
        return False
    return True


def ticket_time(hook: WebhookMapping, payload: Mapping[str, Any]) -> datetime | None:
    """The ticket's own creation time from ``time_field`` (ISO 8601 with a zone), if any."""
    if hook.time_field is None:
        return None
    raw = field(payload, hook.time_field)
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC) if hook.naive_utc else None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00+01:00" has no UTC moment
        return None
