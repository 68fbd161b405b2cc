"""A small client of the drill desk's JSON API (what ``bcdrill ack --desk`` uses)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from engine.errors import InputError, TransportError


@dataclass(frozen=True)
class AckReceipt:
    """The desk's answer to an ack: ``recorded``, ``duplicate`` or ``rejected`` (with why)."""

    status: str
    step: str
    reason: str = ""

    @property
    def recorded(self) -> bool:
        """True when this ack recorded the step."""
        return self.status == "recorded"


def post_ack(
    base_url: str,
    token: str,
    step: str,
    note: str = "",
    timeout_s: float = 5.0,
    client: httpx.Client | None = None,
    choice: str | None = None,
) -> AckReceipt:
    """Ack ``step`` (``id`` or ``party.id``) as the holder of ``token``.

    For a decision step, ``choice`` is the chosen option and ``note`` the rationale.
    Pass a long-lived ``client`` when sending many acks: creating one costs ~0.1 s (its TLS
    context), which would otherwise delay every ack. The moment of the call is sent as the
    claim (``claimed_at``): the engine counts it when it lies inside the transit window.

    Raises :class:`~engine.errors.InputError` when the desk does not accept the token or the
    step (it never says which), :class:`~engine.errors.TransportError` when no desk answers.
    """
    url = base_url.rstrip("/") + "/api/ack"
    body: dict[str, Any] = {"step": step, "note": note, "claimed_at": time.time()}
    if choice is not None:
        body["choice"] = choice
    try:
        response = (client or httpx).post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise TransportError(
            f"no drill desk answers at {base_url!r} ({type(exc).__name__}): is a drill in progress?"
        ) from None
    if response.status_code == 404:
        raise InputError(f"the drill desk at {base_url!r} did not accept this token for step {step!r}")
    if response.status_code == 429:
        raise TransportError(f"the drill desk at {base_url!r} is rate limiting; retry in a few seconds")
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code not in (200, 409) or not isinstance(data, dict):
        raise TransportError(f"the drill desk at {base_url!r} answered HTTP {response.status_code}")
    return AckReceipt(str(data.get("status", "")), str(data.get("step", step)), str(data.get("reason", "")))
