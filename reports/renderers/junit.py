"""JUnit XML debrief for CI: a testsuite per drill, a testcase per step, objective and revert.

GitLab reads ``testcase@classname`` as the suite and ignores ``failure@message``, so each
failure's explanation is in the element body. ``classname`` stays a machine id (``msp``,
``client``, ``objectives``, ``faults``, ``drill``); the texts are translated. A report never
changes a job's status by itself: the ``bcdrill run`` exit code does.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC

from reports.debrief.model import Debrief, FaultResult, ObjectiveResult, StepResult
from reports.debrief.objective_notes import objective_note
from reports.i18n import Translator, parse_utc
from reports.renderers.common import RenderOptions

# Characters XML 1.0 forbids; a stray control byte in a title must not break the report.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _case(suite: ET.Element, classname: str, name: str, seconds: float | None) -> ET.Element:
    time = f"{max(seconds or 0.0, 0.0):.3f}"
    return ET.SubElement(
        suite, "testcase", {"classname": _text(classname), "name": _text(name), "time": time}
    )


def _fail(case: ET.Element, kind: str, body: str) -> None:
    failure = ET.SubElement(case, "failure", {"type": kind, "message": _text(body)})
    failure.text = _text(body)


def _skip(case: ET.Element, body: str) -> None:
    skipped = ET.SubElement(case, "skipped", {"message": _text(body)})
    skipped.text = _text(body)


def _step_case(suite: ET.Element, step: StepResult, t: Translator, responders: str) -> None:
    case = _case(suite, step.party, f"{step.id}: {step.title}", step.actual_s)
    if step.status == "not_exercised":
        # Say why, so that a CI reader knows a skipped case is not a hidden failure.
        key = "junit.step.not_exercised.auto" if responders == "auto" else "junit.step.not_exercised"
        _skip(case, t(key, target=step.target_s))
    elif step.status == "not_reached":
        _skip(case, t("junit.step.not_reached", target=step.target_s))
    elif step.status == "late":
        _fail(
            case, "late", t("junit.step.late", actual=step.actual_s, target=step.target_s, score=step.score)
        )
    elif step.status == "missed" and step.actual_s is None:
        _fail(case, "missed", t("junit.step.never", target=step.target_s))
    elif step.status == "missed":
        _fail(case, "missed", t("junit.step.too_late", actual=step.actual_s, target=step.target_s))


def _objective_case(suite: ET.Element, name: str, objective: ObjectiveResult, t: Translator) -> None:
    case = _case(suite, "objectives", name, objective.actual_s)
    note = objective_note(objective, t)
    if objective.met is False:
        _fail(
            case,
            "objective",
            t(
                "junit.objective.missed",
                name=name.upper(),
                actual=objective.actual_s,
                target=objective.target_s,
                note=note,
            ),
        )
    elif objective.met is None:
        _skip(case, t("junit.objective.not_measured", note=note))


def _fault_case(suite: ET.Element, fault: FaultResult, t: Translator, client: bool) -> None:
    case = _case(suite, "faults", f"revert {fault.id}", None)
    where = {"action": fault.action, "target": fault.target}
    suffix = ".client" if client else ""  # the client version names no MSP command
    if fault.status == "revert_failed":
        _fail(case, "revert", t(f"junit.revert.failed{suffix}", **where))
    elif fault.status != "reverted":
        status = t(f"fault.status.{fault.status}")
        _fail(case, "revert", t(f"junit.revert.none{suffix}", status=status, **where))
    elif fault.revert_verified is not True:
        _fail(case, "revert", t("junit.revert.unverified", **where))


def _outcome_case(suite: ET.Element, debrief: Debrief, t: Translator) -> None:
    case = _case(suite, "drill", "outcome", None)
    if debrief.outcome == "passed":
        return
    lines = [t("junit.outcome", outcome=t(f"outcome_word.{debrief.outcome}"), score=debrief.score)]
    lines += [
        t(
            "junit.finding",
            id=f.id,
            severity=t(f"severity.{f.severity}"),
            title=t.message(f.title_msg, f.title),
            evidence=t.message(f.evidence_msg, f.evidence),
        )
        for f in debrief.findings
    ]
    _fail(case, debrief.outcome, "\n".join(lines))


def _timestamp(started_at: str) -> str:
    """JUnit's timestamp type: ISO 8601 date and time without fraction or zone (it is UTC)."""
    return parse_utc(started_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("errors", "0")


def render(debrief: Debrief, options: RenderOptions) -> str:
    """The debrief as JUnit XML (one ``testsuite`` in a ``testsuites`` root)."""
    t = options.t
    root = ET.Element("testsuites", {"name": "bcdrill"})
    duration = max(debrief.timeline.end_s - debrief.timeline.start_s, 0.0)
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _text(
                t("junit.suite", playbook=debrief.playbook.id, environment=debrief.environment.name)
            ),
            "timestamp": _timestamp(debrief.started_at),
            "time": f"{duration:.3f}",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", debrief.run_id),
        ("outcome", debrief.outcome),
        ("score", "" if debrief.score is None else f"{debrief.score:.3f}"),
        ("rating", debrief.rating or ""),
        ("resolution_s", "" if debrief.resolution_s is None else f"{debrief.resolution_s:g}"),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _text(value)})
    for step in debrief.steps:
        _step_case(suite, step, t, debrief.responders)
    _objective_case(suite, "rto", debrief.objectives.rto, t)
    _objective_case(suite, "rpo", debrief.objectives.rpo, t)
    for fault in debrief.faults:
        _fault_case(suite, fault, t, options.audience == "client")
    _outcome_case(suite, debrief, t)
    _count(suite)
    for key in ("tests", "failures", "skipped", "errors"):
        root.set(key, suite.get(key, "0"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
