"""Players' and evaluators' desk pages in a real browser (headless Debian chromium over CDP).

What a player sees is what the browser renders: no target times, no step order, the
messages sent to them; a Shanghai shop manager's page is in Chinese; a decision is taken
with real mouse clicks.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from engine.record.records import RecordType
from engine.run.responses import Ack
from engine.spec.loader import load_playbook
from tests.test_desk_drill import CHROMIUM, Chromium
from tests.test_desk_exercise import PLAYBOOK, SENT, Exercise, _poll, exercise  # noqa: F401 - the fixture

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (scripts/setup.sh)")

TITLES = "[...document.querySelectorAll('li.step .title')].map(e => e.innerText)"
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def test_player_pages_show_no_answer_key_and_zh_cn_is_chinese(exercise: Exercise, tmp_path: Path) -> None:
    exercise.impact()
    _poll("the customer's call", lambda: any(s["inject"] == "customer-calls" for s in exercise.of(SENT)))
    browser = Chromium(Path(tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")))
    try:
        browser.call("Page.enable")
        base = exercise.url

        # the MSP engineer: the alert, a neutral list of actions, a decision to take
        browser.open(f"{base}/p/{exercise.cards['Alex Moreau'].token}")
        text = browser.evaluate("document.body.innerText")
        assert "EXERCISE EXERCISE EXERCISE — [FIRING] storefront HTTP check failing" in text
        assert not re.search(r"target|within|\d+m\b|\d+ min", text, re.IGNORECASE), text
        titles = browser.evaluate(TITLES)
        assert titles == sorted(titles, key=str.casefold) and len(titles) == 4
        assert not any(re.match(r"\d+\.", t) for t in titles), "no numbering"
        assert "Storefront answers again" not in text, "nothing hints at what monitoring records"
        browser.evaluate(
            "document.querySelector('input[name=choice][value=restart-in-place]').checked = true;"
            "document.querySelector('fieldset.decision input[name=note]').value = 'standby is stale';"
        )
        browser.click("fieldset.decision button")
        browser.wait_event("Page.loadEventFired")
        assert "Recorded: msp.choose-recovery" in browser.evaluate("document.body.innerText")
        (decision,) = [s for s in exercise.of(RecordType.STEP_RECORDED) if s["step"] == "msp.choose-recovery"]
        assert decision["choice"] == "restart-in-place" and decision["note"] == "standby is stale"

        # the Shanghai shop manager: the same desk, in Chinese
        browser.open(f"{base}/p/{exercise.cards['Li Wei'].token}")
        assert browser.evaluate("document.documentElement.lang") == "zh-CN"
        text = browser.evaluate("document.body.innerText")
        assert "演练服务台" in text and "消息" in text and "演练 演练 演练 — 你们的网店报错" in text
        assert "网店经理向服务商服务台报告故障" in text and "启用电话订单" in text
        for english in ("Drill desk", "Messages", "Done", "Refresh", "target", "EXERCISE"):
            assert english not in text, english
        # apart from names, the client and the drill code, what a player reads is Chinese
        rest = text.replace("Li Wei", "").replace("Demo Bakery Ltd", "").replace("CLIENT", "")
        rest = re.sub(r"BCD-[A-Z0-9-]+|MSP|shop manager", "", rest)
        assert len(CJK.findall(rest)) > 100 and LATIN_WORD.findall(rest) == [], LATIN_WORD.findall(rest)
        assert not re.search(r"\d+\s*(分钟|m\b)", text), "no targets in Chinese either"
    finally:
        browser.close()


def test_evaluator_page_shows_both_parties_live_and_records_an_observation_and_a_rating(
    exercise: Exercise,
    tmp_path: Path,
) -> None:
    exercise.impact()
    _poll("the alert", lambda: any(s["inject"] == "alert" for s in exercise.of(SENT)))
    browser = Chromium(Path(tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")))
    try:
        browser.call("Page.enable")
        browser.open(f"{exercise.url}/p/{exercise.cards['Eve Evans'].token}")
        parties = browser.evaluate(
            "[...document.querySelectorAll('section.party')].map(e => e.dataset.party)"
        )
        assert parties == ["msp", "client"]
        rows = browser.evaluate("document.querySelectorAll('section.party tr[data-step]').length")
        assert rows == len(load_playbook(PLAYBOOK).steps) - 1  # both parties' steps (the decision apart)
        assert "alert → msp" in browser.evaluate("document.querySelector('table.timeline').innerText")

        # a step recorded by a player shows up on the evaluator's next look
        assert exercise.book.record(Ack("client.report", "Li Wei"))
        browser.open(f"{exercise.url}/desk")
        status = browser.evaluate("document.querySelector('tr[data-step=\"client.report\"]').innerText")
        assert "Li Wei" in status

        browser.evaluate(
            "document.querySelector('fieldset.observation input[value=improvement]').checked = true;"
            "document.querySelector('fieldset.observation select').value = 'client.report';"
            "document.querySelector('fieldset.observation input[name=text]').value = 'no drill code quoted';"
        )
        browser.click("fieldset.observation button")
        browser.wait_event("Page.loadEventFired")
        assert "Recorded: observation" in browser.evaluate("document.body.innerText")
        browser.evaluate(
            "document.querySelector('fieldset.rating input[name=capability]').value = 'communication';"
            "document.querySelector('fieldset.rating input[value=S]').checked = true;"
            "document.querySelector('fieldset.rating input[name=rationale]').value = 'on time, no ETA';"
        )
        browser.click("fieldset.rating button")
        browser.wait_event("Page.loadEventFired")
        assert "communication: S (Eve Evans)" in browser.evaluate("document.body.innerText")

        # a player's free-text entry is mapped to a step of their party from the page
        exercise.book.log_entry("Tom Becker", "client", "told our director the shop is down")
        browser.open(f"{exercise.url}/desk")
        browser.evaluate("document.querySelector('form.map select').value = 'client.inform-director';")
        browser.click("form.map button")
        browser.wait_event("Page.loadEventFired")
        assert "Recorded: client.inform-director" in browser.evaluate("document.body.innerText")
    finally:
        browser.close()
    (observation,) = exercise.of(RecordType.OBSERVATION_RECORDED)
    assert observation["step"] == "client.report" and observation["text"] == "no drill code quoted"
    (rating,) = exercise.of(RecordType.RATING_RECORDED)
    assert (rating["capability"], rating["rating"], rating["by"]) == ("communication", "S", "Eve Evans")
    (mapped,) = exercise.of(RecordType.ENTRY_MAPPED)
    assert mapped["step"] == "client.inform-director" and exercise.book.recorded_at("client.inform-director")
