"""Translate the notes scoring v1 writes on objectives (``ObjectiveResult.note``).

Scoring writes the note in English; this module recognises each known wording and gives the
catalogue message for it. A note it does not know is shown as written (in English), so a
new scoring note is never lost, only untranslated until the catalogue learns it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from reports.debrief.model import ObjectiveResult
from reports.i18n import Translator

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), key)
    for pattern, key in (
        (r"^not measured: no fault was applied$", "objective.note.no_fault"),
        (r"^not measured: the run stopped before recovery$", "objective.note.stopped"),
        (r"^not measured: no steady-state probes$", "objective.note.no_probes"),
        (
            r"^not measured: steady-state probe '(?P<probe>[^']*)' never reported$",
            "objective.note.never_reported",
        ),
        (
            r"^not recovered: steady-state probe '(?P<probe>[^']*)' was down at run end$",
            "objective.note.not_recovered",
        ),
        (r"^no outage seen: steady-state probes stayed up after impact start$", "objective.note.no_outage"),
        (r"^measured: all steady-state probes up again and stayed up$", "objective.note.measured"),
        (r"^restored by the responders \(the engine only verified\)$", "objective.note.restored_responders"),
        (
            r"^restored by the engine at the responders' signal \((?P<steps>[^)]*)\)$",
            "objective.note.restored_engine",
        ),
        (
            r"^restored partly by the responders, partly by the engine at their signal$",
            "objective.note.restored_mixed",
        ),
        (
            r"^impact start from the engine's fault\.applied record \(after the call returned\)$",
            "objective.note.impact_engine",
        ),
        (r"^impact start from the .*Docker.*$", "objective.note.impact_docker"),
        (r"^impact start from the .*$", "objective.note.impact_target"),
        (
            r"^recovery from probe .*?every (?P<ms>\d+) ms.* \(within one interval\)$",
            "objective.note.resolution",
        ),
        (r"^no steady-state probes$", "objective.note.no_probes"),
        (r"^no RPO target set$", "objective.note.no_rpo_target"),
        (r"^not measured: the playbook names no rpo_probe$", "objective.note.no_rpo_probe"),
        (
            r"^not measured: data probe '(?P<probe>[^']*)' saw no outage or rollback$",
            "objective.note.rpo_no_loss",
        ),
        (
            r"^measured by data probe '(?P<probe>[^']*)': newest surviving record (?P<surviving>.*), "
            r"newest seen before the loss (?P<seen>.*); real seconds, target not time-scaled$",
            "objective.note.rpo_measured",
        ),
        (
            r"^measured by data probe '(?P<probe>[^']*)': no record written at or before the newest "
            r"seen before the loss (?P<seen>.*) survived; at least the writes since the oldest record "
            r"seen were lost; real seconds, target not time-scaled$",
            "objective.note.rpo_nothing_survived",
        ),
    )
)
_NO_TARGET = " (no RTO target set)"
_RECORD = re.compile(r"^(?P<seq>[^@\s]+)@(?P<unix>\d+(?:\.\d+)?)$")


def human_record(value: str, t: Translator) -> str:
    """A data probe's ``seq@unixtime`` as words and a date in the reader's zone (no Unix time)."""
    match = _RECORD.match(value.strip())
    if match is None:
        return value
    when = datetime.fromtimestamp(float(match["unix"]), UTC).isoformat()
    return t("objective.rpo_record", seq=match["seq"], when=when)


def _known(note: str, t: Translator) -> str | None:
    for pattern, key in _PATTERNS:
        match = pattern.match(note)
        if match:
            values = match.groupdict()
            values.update({k: human_record(values[k], t) for k in ("surviving", "seen") if k in values})
            return t(key, **values)
    return None


def objective_note(objective: ObjectiveResult, t: Translator) -> str:
    """The objective's note in ``t``'s language, clause by clause (``; ``-separated); a clause
    whose wording is unknown is shown as written."""
    note = objective.note
    if note.endswith(_NO_TARGET):
        inner = _clauses(note[: -len(_NO_TARGET)], t)
        return t("objective.note.no_rto_target", note=inner)
    return _clauses(note, t)


def _clauses(note: str, t: Translator) -> str:
    whole = _known(note, t)
    if whole is not None:
        return whole
    parts = [part for part in note.split("; ") if part]
    return t("objective.note.join").join(_known(part, t) or part for part in parts)
