"""Message catalogues, translated renderers, client vs internal versions, JUnit structure."""

from __future__ import annotations

import re
import string
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.model.durations import format_duration
from reports.debrief.audience import for_audience
from reports.debrief.compose import Debrief, debrief_from_journal
from reports.debrief.findings import findings_and_plan
from reports.debrief.scoring import revert_problem
from reports.i18n import LANGUAGES, catalogue, placeholders, translator
from reports.renderers import RenderOptions, render, render_text
from reports.testing import ScriptedRun, step
from tests.test_renderers import eventful_run

CODE = Path(__file__).resolve().parents[1] / "reports"
CJK = re.compile("[\u4e00-\u9fff]")


@pytest.fixture
def debrief(tmp_path: Path) -> Debrief:
    run = eventful_run(tmp_path / "run")
    return debrief_from_journal(run.path)


# ------------------------------------------------------------------ catalogues


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    english, chinese = catalogue("en"), catalogue("zh-CN")
    assert set(english) == set(chinese)
    for key, template in english.items():
        assert placeholders(template) == placeholders(chinese[key]), key
        for name in placeholders(template):
            assert name.isidentifier(), f"{key}: placeholder {name!r} is not a plain name"


def test_every_key_the_code_names_exists() -> None:
    """Literal keys in the code and templates are in the catalogue (dynamic ones are tested by
    rendering every status, outcome and finding below)."""
    keys = set(catalogue("en"))
    pattern = re.compile(r"""(?:\bt|self|self\.t|msg)\(\s*["']([a-z_]+(?:\.[a-z_]+)+)["']""")
    used = set()
    for path in [*CODE.rglob("*.py"), *CODE.rglob("*.j2")]:
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert used, "the pattern found no keys"
    assert used - keys == set()


def test_chinese_catalogue_is_translated() -> None:
    """Outside placeholders, names (RTO, MSP, journal record types) and commands, no Chinese
    message keeps English words."""
    kept = re.compile(r"\{[^}]*\}|`[^`]*`|\b(?:RTO|RPO|MSP|bcdrill|[a-z]+\.[a-z_]+|fault\.applied)\b")
    english_left = {
        key: value
        for key, value in catalogue("zh-CN").items()
        if re.search("[A-Za-z]{2,}", kept.sub("", value))
    }
    assert english_left == {}
    assert sum(1 for v in catalogue("zh-CN").values() if CJK.search(v)) > 0.8 * len(catalogue("en"))


def test_english_durations_match_the_engine_format() -> None:
    t = translator("en")
    for seconds in (None, 0.0, 12.34, 59.94, 60.0, 245.0, 3599.6, 3720.0, -90.0, 86400.0):
        assert t.duration(seconds) == format_duration(seconds)
    assert translator("zh-CN").duration(245.0) == "4分05秒"
    assert translator("zh-CN").duration(3720.0) == "1小时02分"


def test_dates_are_shown_in_the_readers_zone_with_the_zone_named() -> None:
    at = "2026-03-02T09:00:00.000Z"
    assert translator("en").datetime(at) == "2026-03-02 09:00:00 UTC"
    assert translator("en", "Europe/Paris").datetime(at) == "2026-03-02 10:00:00 Europe/Paris"
    assert translator("zh-CN", "Asia/Shanghai").datetime(at) == "2026年3月2日 17:00:00（Asia/Shanghai）"
    assert translator("en", "America/Los_Angeles").date("2026-03-02T05:00:00Z") == "2026-03-01"


def test_unknown_language_or_zone_is_an_input_error(debrief: Debrief) -> None:
    with pytest.raises(InputError, match="'fr'"):
        render(debrief, "md", RenderOptions(lang="fr"))
    with pytest.raises(InputError, match="'Mars/Olympus'"):
        render(debrief, "md", RenderOptions(tz="Mars/Olympus"))


def test_finding_texts_come_from_the_catalogue_and_match_scoring(tmp_path: Path) -> None:
    """Every revert-problem wording in the findings agrees with ``scoring.revert_problem``."""
    from engine.record.journal import read_journal
    from reports.debrief.compose import anchor_t, score_objectives, score_steps
    from reports.debrief.facts import read_facts

    run = eventful_run(tmp_path / "r")
    facts = read_facts(read_journal(run.path))
    anchor = anchor_t(facts)
    findings, plan = findings_and_plan(facts, score_objectives(facts, anchor), score_steps(facts, anchor))
    faults = {f"fault:{f.action}:{f.target}": f for f in facts.faults}
    for finding in findings:
        assert finding.title == translator("en").message(finding.title_msg)
        if finding.subject in faults:
            fault = faults[finding.subject]
            problem = revert_problem(fault)
            assert problem is not None
            assert finding.evidence == f"{fault.action} on {fault.target}: {problem.text}"
    assert [i.subject for i in plan] == [f.subject for f in findings]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("fmt", ["md", "html", "junit"])
def test_every_text_format_renders_in_every_language(debrief: Debrief, lang: str, fmt: str) -> None:
    text = render_text(debrief, fmt, RenderOptions(lang=lang, tz="Asia/Shanghai"))
    assert (debrief.playbook.id if fmt == "junit" else debrief.playbook.title) in text
    assert bool(CJK.search(text)) == (lang == "zh-CN")


def test_chinese_markdown_translates_statuses_findings_and_dates(debrief: Debrief) -> None:
    text = render_text(debrief, "md", RenderOptions(lang="zh-CN", tz="Asia/Shanghai"))
    # the playbook has no Chinese texts: they fall back to English, visibly marked
    assert "# 演练汇报：Storefront web server dies（未翻译）" in text
    assert "| Inform the client \\| by phone（未翻译） | 5分00秒 | — | 未完成 | 0.0 |" in text
    assert "| 开始时间 | 2026年3月2日 17:00:00（Asia/Shanghai） |" in text
    assert "故障「block-db」可能仍然存在" in text
    assert "MSP（服务商）步骤「Inform the client | by phone（未翻译）」未完成".replace("|", "\\|") in text
    for english in ("on time", "missed", "Findings", "Improvement plan", "never recorded"):
        assert english not in text


# ------------------------------------------------------------------ client vs internal


def test_client_version_leaves_out_internal_notes_errors_and_commands(debrief: Debrief) -> None:
    internal = render_text(debrief, "md", RenderOptions(audience="internal"))
    client = render_text(debrief, "md", RenderOptions(audience="client"))
    secrets = ("network not found", "docker network connect lab lab-db", "bcdrill recover")
    for text in secrets:
        assert text in internal
    for fmt in ("md", "html", "json", "junit"):
        for lang in LANGUAGES:
            out = render_text(debrief, fmt, RenderOptions(lang=lang, audience="client"))
            leaked = [s for s in secrets if s in out]
            assert leaked == [], (fmt, lang, leaked)
    assert "undoing the simulated failure did not work" in client


def test_client_version_keeps_the_clients_own_notes(tmp_path: Path) -> None:
    run = ScriptedRun(tmp_path)
    run.start(steps=(step("msp", "acknowledge", 100), step("client", "report", 100)))
    run.at(1).probe("web", "up").at(10).inject("stop-web")
    run.at(20).record(
        "step.recorded",
        step="msp.acknowledge",
        party="msp",
        by="Alice",
        source="ack",
        note="paged the on-call engineer twice",
    )
    run.at(30).record(
        "step.recorded", step="client.report", party="client", by="Bob", source="ack", note="phones were busy"
    )
    debrief = debrief_from_journal(run.at(40).revert("stop-web").at(41).probe("web", "up").end().path)
    assert [(n.party, n.audience) for n in debrief.notes] == [("msp", "internal"), ("client", "client")]
    client = for_audience(debrief, "client")
    assert [n.text for n in client.notes] == ["phones were busy"]
    html = render_text(debrief, "html", RenderOptions(audience="client"))
    assert "phones were busy" in html and "paged the on-call" not in html
    assert "paged the on-call engineer twice" in render_text(debrief, "html")


# ------------------------------------------------------------------ JUnit


def _check_junit(root: ET.Element) -> None:
    """The structure of the common JUnit XSD (Jenkins junit-10.xsd / GitLab's reader)."""
    ints = ("tests", "failures", "errors", "skipped")
    assert root.tag == "testsuites"
    assert set(root.attrib) <= {"name", "time", "tests", "failures", "disabled", "errors", "skipped"}
    suites = list(root)
    assert suites and all(s.tag == "testsuite" for s in suites)
    for suite in suites:
        allowed = {
            "name",
            "tests",
            "failures",
            "errors",
            "skipped",
            "time",
            "timestamp",
            "hostname",
            "id",
            "package",
            "disabled",
            "group",
            "file",
            "log",
            "url",
            "version",
        }
        assert set(suite.attrib) <= allowed and {"name", "tests"} <= set(suite.attrib)
        assert all(suite.get(k, "0").isdigit() for k in ints)
        assert re.fullmatch(r"\d+(\.\d+)?", suite.get("time", "0"))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp", ""))
        children = [c.tag for c in suite]
        assert children[:1] == ["properties"]
        assert set(children[1:]) <= {"testcase", "system-out", "system-err"}
        for prop in suite.find("properties") or []:
            assert prop.tag == "property" and set(prop.attrib) == {"name", "value"}
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        for case in cases:
            assert {"name", "classname", "time"} <= set(case.attrib)
            assert set(case.attrib) <= {"name", "classname", "time", "assertions", "status", "file", "line"}
            kinds = [c.tag for c in case]
            assert set(kinds) <= {"skipped", "error", "failure", "system-out", "system-err"}
            assert kinds.count("skipped") <= 1
            for child in case:
                assert set(child.attrib) <= {"message", "type"}
        failures = sum(1 for c in cases if c.find("failure") is not None)
        assert int(suite.get("failures", "-1")) == failures


@pytest.mark.parametrize("lang", LANGUAGES)
def test_junit_validates_against_the_common_schema_structure(debrief: Debrief, lang: str) -> None:
    xml = render_text(debrief, "junit", RenderOptions(lang=lang))
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    _check_junit(ET.fromstring(xml.encode("utf-8")))


def test_junit_check_rejects_a_broken_document() -> None:
    broken = ET.fromstring(
        '<testsuites><testsuite name="x" tests="2"><properties/>'
        '<testcase name="a" classname="b" time="1"/></testsuite></testsuites>'
    )
    with pytest.raises(AssertionError):
        _check_junit(broken)


def test_placeholder_names_parse() -> None:
    assert placeholders("{a:dur} and {b!r}") == {"a", "b"}
    assert list(string.Formatter().parse("plain")) == [("plain", None, None, None)]
