"""The end of a run's record: sign the journal head, tell the client sponsor the head hash.

Called by the runner after the debrief is written, and by ``bcdrill recover`` after it
finished a crashed run. The head hash reaches the client's sponsor (a client participant
whose role names them ``sponsor`` and who has a ``notify`` apprise URL) at the end of an
official drill, so that a journal re-chained later no longer matches what the client holds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import DrillError
from engine.logsetup import get_logger
from engine.model.types import Participant
from engine.record.records import RunClass
from engine.record.signing import SigningKey, sign_run

log = get_logger(__name__)

__all__ = ["seal_run", "sponsor_channels"]


def sponsor_channels(participants: tuple[Participant, ...]) -> list[str]:
    """The apprise URLs of the client's sponsors (``env:VAR`` references resolved)."""
    urls: list[str] = []
    for person in participants:
        if person.party != "client" or "sponsor" not in person.role.casefold() or not person.notify:
            continue
        url = os.environ.get(person.notify[4:], "") if person.notify.startswith("env:") else person.notify
        if url:
            urls.append(url)
    return urls


def _notify(urls: list[str], head: Mapping[str, Any], client: str) -> bool:
    import apprise

    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    title = f"Drill evidence for {client}: run {head['run_id']}"
    body = (
        f"Run {head['run_id']} ({head['class']}) ended: {head['outcome']}, score {head['score']}.\n"
        f"Journal head hash {head['last_hash']} over {head['records']} records.\n"
        "Keep this message: it lets you check later that the drill's journal was not changed."
    )
    return bool(sender.notify(title=title, body=body))


def seal_run(
    run_dir: Path,
    key: SigningKey | None,
    debrief: Mapping[str, Any] | None,
    participants: tuple[Participant, ...] = (),
    client: str = "",
) -> Mapping[str, Any] | None:
    """Sign the finished run (when a key is configured) and notify the sponsor of an official drill.

    Returns the signed head, or ``None`` when there is no key. Never raises for a failed
    notification: the drill is over and its record is safe on disk; the failure is logged.
    """
    if key is None:
        log.warning("evidence.unsigned", run=run_dir.name, reason="no MSP signing key (bcdrill keys init)")
        return None
    outcome = str(debrief.get("outcome", "failed")) if debrief else "failed"
    score = debrief.get("score") if debrief else None
    head = sign_run(run_dir, key, outcome, score if isinstance(score, int | float) else None, debrief)
    log.info("evidence.signed", run=run_dir.name, head=head["last_hash"], key=key.fingerprint)
    urls = sponsor_channels(participants)
    if head["class"] == RunClass.DRILL and urls:
        try:
            sent = _notify(urls, head, client)
        except (DrillError, OSError, ImportError) as exc:
            sent = False
            log.error("evidence.sponsor_not_notified", run=run_dir.name, error=str(exc))
        log.info("evidence.sponsor_notified" if sent else "evidence.sponsor_not_notified", run=run_dir.name)
    return head
