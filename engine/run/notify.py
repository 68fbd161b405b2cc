"""Deliver drill messages into outside channels: Alertmanager webhooks, PagerDuty events, apprise.

The URL of a channel is a secret by reference (``env:VAR`` / ``file:PATH``): alert paths carry
tokens in their URLs, so the URL is resolved only at delivery and never written anywhere.
Each delivery either returns or raises :class:`DeliveryError` with a reason that names the
channel kind and what went wrong — never the URL.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from engine.clock import iso
from engine.errors import DrillError
from engine.model.exercise import Channel

__all__ = ["DELIVERY_TIMEOUT_S", "DeliveryError", "Notice", "deliver", "resolve_ref"]

DELIVERY_TIMEOUT_S = 5.0


class DeliveryError(DrillError):
    """A message could not be delivered through a channel (journaled as ``inject.failed``)."""


@dataclass(frozen=True)
class Notice:
    """One message to deliver: what a receiver needs to show it."""

    inject: str
    run_id: str
    title: str
    text: str  # the marked text in the channel's language
    severity: str
    at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)


def resolve_ref(ref: str) -> str:
    """The value behind ``env:VAR`` or ``file:PATH``; :class:`DeliveryError` when there is none."""
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(rest)
        if not value:
            raise DeliveryError(f"secret {ref!r}: environment variable {rest!r} is not set")
        return value.strip()
    if scheme == "file":
        try:
            return Path(rest).expanduser().read_text().strip()
        except OSError as exc:
            raise DeliveryError(f"secret {ref!r}: cannot read the file ({exc.strerror})") from None
    raise DeliveryError(f"secret reference {ref!r} must be 'env:VAR' or 'file:PATH'")


def deliver(channel: Channel, notice: Notice) -> None:
    """Send ``notice`` through ``channel``; raise :class:`DeliveryError` with the reason."""
    url = resolve_ref(channel.url)
    try:
        if channel.kind == "apprise":
            _apprise(url, notice)
        elif channel.kind == "pagerduty":
            key = resolve_ref(channel.routing_key) if channel.routing_key else ""
            _post(url, _pagerduty_event(notice, key), channel.kind)
        else:
            _post(url, _alertmanager_payload(notice), channel.kind)
    except DeliveryError as exc:
        raise DeliveryError(str(exc).replace(url, "<url>")) from None


def _post(url: str, payload: Any, kind: str) -> None:
    try:
        response = httpx.post(url, json=payload, timeout=DELIVERY_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{kind}: {type(exc).__name__}: {_first_line(exc)}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"{kind}: the receiver answered HTTP {response.status_code}")


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:200] or "no detail"


def _fingerprint(notice: Notice) -> str:
    return hashlib.sha256(f"{notice.run_id}/{notice.inject}".encode()).hexdigest()[:16]


def _alertmanager_payload(notice: Notice) -> dict[str, Any]:
    """The JSON an Alertmanager webhook receiver gets (``version: "4"``), with one firing alert."""
    labels = {
        "alertname": "BcdrillExercise",
        "severity": notice.severity,
        "exercise": "true",
        "bcdrill_run": notice.run_id,
        "bcdrill_inject": notice.inject,
        **notice.labels,
    }
    annotations = {"summary": notice.title, "description": notice.text}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(notice.at),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": _fingerprint(notice),
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{bcdrill_run="{notice.run_id}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "bcdrill",
        "groupLabels": {"bcdrill_run": notice.run_id},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [alert],
    }


def _pagerduty_event(notice: Notice, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 ``trigger`` event."""
    severity = notice.severity if notice.severity in ("critical", "error", "warning", "info") else "critical"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": f"bcdrill-{notice.run_id}-{notice.inject}",
        "payload": {
            "summary": notice.title[:1024],
            "source": "bcdrill",
            "severity": severity,
            "timestamp": iso(notice.at),
            "class": "exercise",
            "custom_details": {"text": notice.text, "run": notice.run_id, **notice.labels},
        },
    }


def _apprise(url: str, notice: Notice) -> None:
    import apprise  # heavy; only when an apprise channel is used

    sender = apprise.Apprise()
    if not sender.add(url):
        raise DeliveryError("apprise: the URL is not one apprise understands")
    if not sender.notify(body=notice.text, title=notice.title):
        raise DeliveryError("apprise: the notification service did not accept the message")
