"""JUnit XML debrief for CI: a testsuite per drill, a testcase per step, objective and revert.

GitLab reads ``testcase@classname`` as the suite and ignores ``failure@message``, so each
failure's explanation is in the element body. A report never changes a job's status by
itself: the ``bcdrill run`` exit code does.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from engine.durations import format_duration
from reports.model import Debrief, FaultResult, ObjectiveResult, StepResult
from reports.renderers.common import fmt_score

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


def _step_case(suite: ET.Element, step: StepResult) -> None:
    case = _case(suite, step.party, f"{step.id}: {step.title}", step.actual_s)
    target = format_duration(step.target_s)
    if step.status == "not_exercised":
        _skip(case, f"not exercised in this run (target {target})")
    elif step.status == "late":
        _fail(case, "late", f"recorded after {format_duration(step.actual_s)}, target {target}; "
                            f"score {step.score:.1f}")
    elif step.status == "missed":
        when = "never recorded" if step.actual_s is None else (
            f"recorded after {format_duration(step.actual_s)}, beyond the late limit"
        )
        _fail(case, "missed", f"{when}; target {target}")


def _objective_case(suite: ET.Element, name: str, objective: ObjectiveResult) -> None:
    case = _case(suite, "objectives", name, objective.actual_s)
    target = format_duration(objective.target_s)
    if objective.met is False:
        actual = format_duration(objective.actual_s)
        _fail(case, "objective", f"{name.upper()} missed: actual {actual}, target {target}; "
                                 f"{objective.note}")
    elif objective.met is None:
        _skip(case, objective.note)


def _fault_case(suite: ET.Element, fault: FaultResult) -> None:
    case = _case(suite, "faults", f"revert {fault.id}", None)
    if fault.status == "revert_failed":
        _fail(case, "revert", f"revert of {fault.action} on {fault.target} failed: "
                              "the fault may still be in place; run `bcdrill recover`")
    elif fault.status != "reverted":
        _fail(case, "revert", f"{fault.action} on {fault.target}: no revert recorded "
                              f"(status {fault.status}); run `bcdrill recover`")
    elif fault.revert_verified is not True:
        _fail(case, "revert", f"revert of {fault.action} on {fault.target} was not verified")


def _outcome_case(suite: ET.Element, debrief: Debrief) -> None:
    case = _case(suite, "drill", "outcome", None)
    if debrief.outcome == "passed":
        return
    lines = [f"outcome {debrief.outcome}, score {fmt_score(debrief.score)}"]
    lines += [f"{f.id} [{f.severity}] {f.title}: {f.evidence}" for f in debrief.findings]
    _fail(case, debrief.outcome, "\n".join(lines))


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("errors", "0")


def render(debrief: Debrief) -> str:
    """The debrief as JUnit XML (one ``testsuite`` in a ``testsuites`` root)."""
    root = ET.Element("testsuites", {"name": "bcdrill"})
    duration = max(debrief.timeline.end_s - debrief.timeline.start_s, 0.0)
    suite = ET.SubElement(root, "testsuite", {
        "name": _text(f"drill {debrief.playbook.id} on {debrief.environment.name}"),
        "timestamp": debrief.started_at,
        "time": f"{duration:.3f}",
    })
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
        _step_case(suite, step)
    _objective_case(suite, "rto", debrief.objectives.rto)
    _objective_case(suite, "rpo", debrief.objectives.rpo)
    for fault in debrief.faults:
        _fault_case(suite, fault)
    _outcome_case(suite, debrief)
    _count(suite)
    for key in ("tests", "failures", "skipped", "errors"):
        root.set(key, suite.get(key, "0"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
