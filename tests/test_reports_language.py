"""Reports entirely in the reader's language: playbook texts per language (inline or in a
translations file), visible fallback, ``validate --lang``, plain words for faults, human RPO
times — and a zh-CN client HTML and PDF of a shipped playbook with no English left."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import PlaybookError
from engine.model.text import LocalText
from engine.record.records import RecordType
from engine.spec.loader import load_playbook
from engine.spec.translations import untranslated
from reports.debrief.compose import Debrief, debrief_from_journal
from reports.debrief.model import ObjectiveResult
from reports.debrief.objective_notes import objective_note
from reports.i18n import translator
from reports.renderers import RenderOptions, render_bytes, render_text
from reports.testing import ScriptedRun, StepDef, run_started

REPO = Path(__file__).resolve().parent.parent
STOREFRONT = REPO / "playbooks" / "storefront-down.yaml"
CONTAINER = "bcdrill-lab-storefront-1"
CLIENT_ZH = RenderOptions(lang="zh-CN", tz="Asia/Shanghai", audience="client")


def shipped_run(run_dir: Path, translated: bool = True) -> Debrief:
    """A drill of the shipped storefront playbook, its texts as the runner journals them."""
    playbook = load_playbook(STOREFRONT)
    steps = [
        StepDef(s.party, s.id, s.title, s.within_s, s.recorded_by.kind, s.weight, s.recorded_by.probe, None)
        for s in playbook.steps
    ]
    data = run_started(steps=steps, title=playbook.title, impact=(25, 3000.0, "CNY"), rto_s=1800.0)
    data["playbook"].update(id=playbook.id, summary=playbook.summary)
    if translated:
        data["playbook"]["translations"] = {k: dict(v) for k, v in playbook.translations.items()}
    data["probes"] = [
        {"id": p, "kind": "http", "interval_s": 1.0, "timeout_s": 0.5} for p in ("storefront", "api")
    ]
    data["steady_state"] = ["storefront", "api"]
    run = ScriptedRun(run_dir)
    run.record(RecordType.RUN_STARTED, **data)
    run.record(RecordType.PREFLIGHT_PASSED, targets=[], probes={})
    run.at(1).probe("storefront", "up").probe("api", "up")
    target = {"name": "storefront", "kind": "container", "ref": "c0ffee", "label": CONTAINER}
    run.at(9).record(
        RecordType.FAULT_INTENT,
        fault=f"stop-web@{CONTAINER}",
        action="docker.stop",
        target=target,
        params={},
        prior={},
    )
    run.at(10).record(RecordType.FAULT_APPLIED, fault=f"stop-web@{CONTAINER}")
    run.at(11).probe("storefront", "down")
    run.at(100).step("msp.acknowledge").at(400).step("client.report").at(500).step("client.workaround")
    run.at(900).revert(f"stop-web@{CONTAINER}").probe("storefront", "up")
    run.step("msp.restore", by="probe", source="probe")
    return debrief_from_journal(run.at(910).end().path)


def english_texts() -> list[str]:
    playbook = load_playbook(STOREFRONT)
    return [playbook.title, playbook.summary, *(s.title for s in playbook.steps)]


ENGINE_TERMS = re.compile(r"docker\.|host\.[a-z_]+|bcdrill-lab|stop-web|@\d|\b1[6-9]\d{8}\b")


def _pdf_text(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "zh.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", "", text)


def test_zh_client_html_and_pdf_of_a_shipped_playbook_have_no_english_and_no_engine_terms(
    tmp_path: Path,
) -> None:
    debrief = shipped_run(tmp_path / "run")
    html = render_text(debrief, "html", CLIENT_ZH)
    pdf = _pdf_text(tmp_path, render_bytes(debrief, "pdf", CLIENT_ZH))
    playbook = load_playbook(STOREFRONT)
    for page in (html, pdf):
        squeezed = re.sub(r"\s+", "", page)
        left = [text for text in english_texts() if re.sub(r"\s+", "", text) in squeezed]
        assert left == [], f"untranslated playbook texts: {left}"
        assert ENGINE_TERMS.findall(page) == []
        for text in playbook.translations["zh-CN"].values():
            if text != playbook.translations["zh-CN"].get("summary"):
                assert re.sub(r"\s+", "", text) in squeezed or text in ("网店接口",), text
    assert "网店的服务器被停止" in html  # the fault in plain words
    # Outside the markup, the only Latin words left are names and codes, not prose
    text = re.sub(r"<[^>]+>", " ", html[html.index("<body>") :])
    text = re.sub(r"\b[0-9a-f]{64}\b", " ", text)  # the journal's head hash (evidence)
    names = {"Acme", "Ltd", "Asia", "Shanghai", "CNY", "MSP", "RTO", "RPO", "bcdrill", "debrief"}
    names |= {"lab", "test"}  # the environment's name and the run id's suffix
    assert set(re.findall(r"[A-Za-z][A-Za-z-]{2,}", text)) <= names
    assert "（未翻译）" not in html


def test_internal_english_version_keeps_the_engine_detail(tmp_path: Path) -> None:
    html = render_text(shipped_run(tmp_path), "html")
    assert "docker.stop" in html and CONTAINER in html


def test_a_missing_translation_falls_back_visibly(tmp_path: Path) -> None:
    text = render_text(shipped_run(tmp_path, translated=False), "md", RenderOptions(lang="zh-CN"))
    playbook = load_playbook(STOREFRONT)
    assert f"{playbook.steps[0].title}（未翻译）" in text
    assert f"{playbook.title}（未翻译）" in text


def test_json_stays_language_neutral_and_carries_the_translations(tmp_path: Path) -> None:
    debrief = shipped_run(tmp_path)
    document = render_text(debrief, "json", RenderOptions(lang="zh-CN"))
    assert '"title": "Storefront web tier stops during trading hours"' in document
    assert "网店网页服务在营业时间停止" in document  # in "translations"


def test_inline_texts_per_language(tmp_path: Path) -> None:
    text = STOREFRONT.read_text(encoding="utf-8")
    text = text.replace(
        "title: Storefront web tier stops during trading hours",
        "title: {en: Storefront web tier stops during trading hours, zh-CN: 网店停止（内联）}",
    )
    assert "网店停止（内联）" in text
    path = tmp_path / "inline.yaml"
    path.write_text(text, encoding="utf-8")
    playbook = load_playbook(path)  # no translations file beside it
    assert playbook.title == "Storefront web tier stops during trading hours"
    assert playbook.translations["zh-CN"]["title"] == "网店停止（内联）"
    assert "title" not in untranslated(playbook, "zh-CN")
    assert "step:msp.acknowledge" in untranslated(playbook, "zh-CN")
    assert LocalText.of({"en": "a", "zh-CN": "乙"}).get("zh-CN") == "乙"


def test_validate_lang_lists_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "storefront-down.yaml"
    path.write_text(STOREFRONT.read_text(encoding="utf-8"), encoding="utf-8")
    runner = CliRunner()
    missing = runner.invoke(app, ["validate", "--lang", "zh-CN", str(path)])
    assert missing.exit_code == 2
    output = missing.output.replace("\n", "")  # the console wraps long lines
    assert re.search(r"storefront-down\.yaml:\d+:\d+: title: no zh-CN text", output), output
    assert "response.client[0].title: no zh-CN text" in output
    assert "storefront-down.translations.yaml" in output
    complete = runner.invoke(app, ["validate", "--lang", "zh-CN", str(STOREFRONT)])
    assert complete.exit_code == 0, complete.output


def test_translations_file_naming_an_unknown_step_is_located(tmp_path: Path) -> None:
    path = tmp_path / "storefront-down.yaml"
    path.write_text(STOREFRONT.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "storefront-down.translations.yaml").write_text(
        "format: playbook-translations/v1\nplaybook: storefront-down\nlanguages:\n  zh-CN:\n"
        "    steps:\n      msp.nope: 不存在\n",
        encoding="utf-8",
    )
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    (problem,) = caught.value.problems
    assert problem.line == 6 and "no step 'msp.nope'" in problem.message


def test_rpo_note_shows_human_times_not_unix_timestamps() -> None:
    note = (
        "measured by data probe 'orders-data': newest surviving record 410@1795980678.06, "
        "newest seen before the loss 415@1795980683.5; real seconds, target not time-scaled"
    )
    objective = ObjectiveResult(300.0, 5.4, True, note)
    english = objective_note(objective, translator("en", "Asia/Shanghai"))
    assert "1795980678" not in english and "@" not in english
    assert "record 410 written 2026-" in english and "Asia/Shanghai" in english
    chinese = objective_note(objective, translator("zh-CN", "Asia/Shanghai"))
    assert "第 410 条记录" in chinese and "1795980678" not in chinese
