"""Client-facing and internal versions of a debrief: one rule, applied before any renderer.

The ``internal`` version is the whole debrief. The ``client`` version leaves out the notes
marked internal (the MSP's own step notes, engine diagnostics, manual revert commands) and
uses the client wording of evidence and actions that would otherwise quote engine errors
or MSP commands (catalogue keys ending in ``.client``).
"""

from __future__ import annotations

from dataclasses import replace

from reports.debrief.exercise_model import ExerciseResults, mean_confidence
from reports.debrief.model import Audience, Debrief, Finding, FollowUp, Improvement, Message
from reports.i18n import placeholders, translator

AUDIENCES: tuple[Audience, ...] = ("client", "internal")


def client_message(msg: Message | None) -> Message | None:
    """The client wording of ``msg`` when the catalogue has one, else ``msg`` itself."""
    if msg is None:
        return None
    variant = f"{msg.key}.client"
    english = translator("en")
    if not english.has(variant):
        return msg
    used = placeholders(english.messages[variant])  # drop what the client must not see
    return Message(variant, {k: v for k, v in msg.params.items() if k in used})


def _english(msg: Message | None, fallback: str) -> str:
    return translator("en").message(msg, fallback)


def _finding(finding: Finding) -> Finding:
    evidence = client_message(finding.evidence_msg)
    return replace(finding, evidence_msg=evidence, evidence=_english(evidence, finding.evidence))


def _improvement(item: Improvement) -> Improvement:
    action = client_message(item.action_msg)
    return replace(item, action_msg=action, action=_english(action, item.action))


def _follow_up(item: FollowUp) -> FollowUp:
    action = client_message(item.action_msg)
    return replace(item, action_msg=action, action=_english(action, item.action))


def for_audience(debrief: Debrief, audience: Audience) -> Debrief:
    """The version of ``debrief`` for ``audience`` (``internal`` returns it unchanged)."""
    if audience == "internal":
        return debrief
    if audience != "client":
        raise ValueError(f"unknown audience {audience!r} (known: {', '.join(AUDIENCES)})")
    return replace(
        debrief,
        notes=tuple(n for n in debrief.notes if n.audience == "client"),
        findings=tuple(_finding(f) for f in debrief.findings),
        improvements=tuple(_improvement(i) for i in debrief.improvements),
        follow_up=tuple(_follow_up(f) for f in debrief.follow_up),
        exercise=debrief.exercise and _client_exercise(debrief.exercise),
    )


def _client_exercise(exercise: ExerciseResults) -> ExerciseResults:
    """Without observations and hotwash answers marked internal (mean confidence of the rest)."""
    hotwash = exercise.hotwash
    if hotwash is not None:
        shown = tuple(a for a in hotwash.answers if not a.internal)
        hotwash = replace(hotwash, answers=shown, confidence=mean_confidence(shown))
    observations = tuple(o for o in exercise.observations if not o.internal)
    return replace(exercise, observations=observations, hotwash=hotwash)
