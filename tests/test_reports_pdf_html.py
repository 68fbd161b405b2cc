"""The HTML debrief in headless Chromium (no console errors, timeline drawn) and the PDF
(pages, score and steps in the text, CJK text with an embedded CJK font)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
from PIL import Image

from reports.debrief.compose import Debrief, debrief_from_journal
from reports.renderers import RenderOptions, render_bytes, render_text
from tests.browser import CHROMIUM
from tests.browser import CHROMIUM_FLAGS as BROWSER_FLAGS
from tests.test_renderers import eventful_run

POPPLER = shutil.which("pdftotext") and shutil.which("pdffonts") and shutil.which("pdfinfo")
CHROMIUM_FLAGS = (*BROWSER_FLAGS, "--hide-scrollbars", "--force-device-scale-factor=1")
# Fill colours of the chart (reports/renderers/htmlpage.py COLOURS).
FAULT, UP, DOWN = (0xFD, 0xB0, 0x22), (0x47, 0xCD, 0x89), (0xF0, 0x44, 0x38)


@pytest.fixture(scope="module")
def debrief(tmp_path_factory: pytest.TempPathFactory) -> Debrief:
    return debrief_from_journal(eventful_run(tmp_path_factory.mktemp("run")).path)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "install Debian's chromium: apt-get install -y chromium"
    profile = tmp_path / "profile"
    command = [
        CHROMIUM,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]


def _pixels_near(image: Image.Image, colour: tuple[int, int, int], box: tuple[int, int, int, int]) -> int:
    region = image.convert("RGB").crop(box)
    pixels = cast("Sequence[tuple[int, int, int]]", region.get_flattened_data())
    return sum(1 for pixel in pixels if all(abs(a - b) <= 3 for a, b in zip(pixel, colour, strict=True)))


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_html_renders_in_chromium_and_the_timeline_is_drawn(debrief: Debrief, tmp_path: Path) -> None:
    page = tmp_path / "debrief.html"
    page.write_text(render_text(debrief, "html"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1300", page.as_uri())
    assert shot.exists(), result.stderr[-2000:]
    assert _console_errors(result.stderr) == []
    image = Image.open(shot)
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    svg = dom.stdout[dom.stdout.index("<svg") : dom.stdout.index("</svg>")]
    assert svg.count("<rect") >= 9 and svg.count("<circle") == 4
    # The chart sits below the executive summary and the cards: fault windows (orange) and the
    # probe's down band (red) and up bands (green) are painted there, right of the row labels.
    chart = (220, 650, 1000, 1100)
    assert _pixels_near(image, FAULT, chart) > 500
    assert _pixels_near(image, DOWN, chart) > 500
    assert _pixels_near(image, UP, chart) > 50
    assert _pixels_near(image, FAULT, (0, 720, 200, 960)) == 0  # no bars under the row labels


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_chinese_html_renders_without_errors(debrief: Debrief, tmp_path: Path) -> None:
    page = tmp_path / "zh.html"
    page.write_text(render_text(debrief, "html", RenderOptions(lang="zh-CN")), encoding="utf-8")
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0 and _console_errors(dom.stderr) == []
    assert '<html lang="zh-CN">' in dom.stdout and "演练汇报" in dom.stdout


def _pdf(tmp_path: Path, data: bytes, name: str) -> tuple[str, str, int]:
    assert POPPLER, "install poppler-utils"
    path = tmp_path / name
    path.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    match = re.search(r"^Pages:\s+(\d+)", info, re.M)
    assert match
    return text, fonts, int(match.group(1))


def test_pdf_has_the_score_every_step_and_numbered_pages(debrief: Debrief, tmp_path: Path) -> None:
    data = render_bytes(debrief, "pdf")
    assert data.startswith(b"%PDF-")
    text, fonts, pages = _pdf(tmp_path, data, "en.pdf")
    assert 2 <= pages <= 4
    assert "77.5" in text and "FAILED" in text
    for step in debrief.steps:
        assert step.title in text, step.title
    assert re.search(rf"\b1\s*/\s*{pages}\b", text) and re.search(rf"\b{pages}\s*/\s*{pages}\b", text)
    assert f"run {debrief.run_id}" in text  # the footer in the page margin
    assert "Noto-Sans-CJK" not in fonts


def test_chinese_pdf_has_chinese_text_in_an_embedded_cjk_font(debrief: Debrief, tmp_path: Path) -> None:
    options = RenderOptions(lang="zh-CN", tz="Asia/Shanghai", audience="client")
    text, fonts, pages = _pdf(tmp_path, render_bytes(debrief, "pdf", options), "zh.pdf")
    assert pages >= 2
    squeezed = re.sub(r"\s+", "", text)
    for chinese in ("演练汇报", "未通过", "时间线", "改进计划", "2026年3月2日17:00:00", "未完成"):
        assert chinese in squeezed, chinese
    assert "77.5" in text
    cjk = [line for line in fonts.splitlines() if "Noto-Sans-CJK-SC" in line]
    assert cjk and all(" yes " in line for line in cjk)  # embedded (emb column)
    assert "Noto-Sans-CJK-JP" not in fonts  # Simplified Chinese glyph forms, not Japanese
    assert "network not found" not in text  # the client version


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_pdf_last_page_is_not_near_empty(debrief: Debrief, tmp_path: Path, lang: str) -> None:
    """No page is spent on a footer line alone: the last page carries real content."""
    data = render_bytes(debrief, "pdf", RenderOptions(lang=lang))
    _, _, pages = _pdf(tmp_path, data, f"{lang}.pdf")
    last = subprocess.run(
        ["pdftotext", "-f", str(pages), "-l", str(pages), str(tmp_path / f"{lang}.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    body = [line for line in last.splitlines() if line.strip() and debrief.run_id not in line]
    body = [line for line in body if not re.fullmatch(r"\s*\d+\s*/\s*\d+\s*", line)]
    assert sum(len(line.strip()) for line in body) > 60, last  # a footer-only page has ~10
