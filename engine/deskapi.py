"""The smallest client of a run's drill desk JSON API, for ``bcdrill ack --token-env``.

The desk (package ``drills``) writes its URL to ``<run>/desk.json`` while it runs. The engine
only speaks its documented HTTP contract: ``POST {url}/api/ack`` with a Bearer token and JSON
``{step, note, claimed_at}`` (``claimed_at``: UTC epoch seconds the person acted); 2xx =
recorded, 409 = refused with a reason, anything else = not accepted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from engine.errors import InputError

TIMEOUT_S = 5.0


def post_ack_to_desk(
    run_dir: Path, token: str, step: str, note: str = "", claimed_at: float | None = None
) -> str:
    """Post one ack; return the desk's answer as a sentence, raise :class:`InputError` if refused."""
    if not token:
        raise InputError("the --token-env variable is empty or unset")
    try:
        url = str(json.loads((run_dir / "desk.json").read_text())["url"]).rstrip("/")
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"run {run_dir.name} has no drill desk running") from exc
    request = urllib.request.Request(  # noqa: S310 - the run's own desk URL
        f"{url}/api/ack",
        data=json.dumps({"step": step, "note": note, "claimed_at": claimed_at}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return f"{step}: {json.loads(response.read() or b'{}').get('status', 'recorded')}"
    except urllib.error.HTTPError as exc:
        if exc.code == 409:
            reason = json.loads(exc.read() or b"{}").get("reason", "refused")
            raise InputError(f"{step}: refused by the desk: {reason}") from exc
        raise InputError(f"{step}: not accepted by the desk (HTTP {exc.code})") from exc
    except OSError as exc:
        raise InputError(f"cannot reach the drill desk at {url}: {exc}") from exc
