"""Timeline labels never clip, in either language: the layout keeps every label inside the
drawing, and headless Chromium measures the drawn text (``getBBox``) to prove it."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.debrief.compose import Debrief, debrief_from_journal
from reports.i18n import translator
from reports.renderers import RenderOptions, render_text
from reports.renderers.svg import layout
from reports.renderers.textmetrics import text_width
from reports.testing import ScriptedRun, step

CHROMIUM = shutil.which("chromium")
LONG = {
    "msp.acknowledge": "On-call engineer acknowledges the storefront alert and opens an incident",
    "msp.inform": "Client informed through the agreed channel with an ETA and the next update time",
    "client.report": "Shop manager reports the outage to the MSP service desk quoting the drill code",
}
CHINESE = {
    "zh-CN": {
        "title": "网店网页服务在营业时间停止",
        "step:msp.acknowledge": "值班工程师确认网店告警并立即开启事件单，通知所有相关的技术人员",
        "step:msp.inform": "已通过约定渠道通知客户，并给出预计恢复时间和下一次通报的时间",
        "step:client.report": "店长向服务商的服务台报告故障，并引用本次演练的识别代码",
        "name:web": "网店",
    }
}
PROBE = 'const svg = document.querySelector("svg.timeline"); const vb = svg.viewBox.baseVal;'
MEASURE = f"""<script>
{PROBE}
const boxes = [...svg.querySelectorAll("text")].map(t => {{
  const b = t.getBBox(); return [b.x, b.x + b.width, b.y, b.y + b.height, t.textContent]; }});
document.body.setAttribute("data-extents", JSON.stringify({{width: vb.width, height: vb.height, boxes}}));
</script>"""


def long_run(run_dir: Path) -> Debrief:
    steps = tuple(step(k.split(".")[0], k.split(".")[1], 300, title=v) for k, v in LONG.items())
    run = ScriptedRun(run_dir)
    run.start(steps=steps, translations=CHINESE)
    run.at(1).probe("web", "up").at(10).inject("stop-web@bcdrill-lab-storefront-with-a-long-name-1")
    run.at(11).probe("web", "down").at(100).step("msp.acknowledge").at(200).step("client.report")
    run.at(400).revert("stop-web@bcdrill-lab-storefront-with-a-long-name-1").probe("web", "up")
    return debrief_from_journal(run.at(410).end().path)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_layout_keeps_every_label_inside_the_drawing(tmp_path: Path, lang: str) -> None:
    from reports.debrief.language import for_language

    debrief = for_language(long_run(tmp_path), lang)
    chart = layout(debrief.timeline, translator(lang))
    for label in chart.labels:
        size = 10.0 if label.css == "tick" else 11.0
        width = text_width(label.text, size)
        left = {"end": label.x - width, "middle": label.x - width / 2, "start": label.x}[label.anchor]
        assert left >= 0 and left + width <= chart.width, label
    rows = [x.text for x in chart.labels if x.css == "row"]
    assert any(text.endswith("…") for text in rows)  # long titles are cut to fit, not clipped


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_chromium_draws_every_label_inside_the_svg(tmp_path: Path, lang: str) -> None:
    assert CHROMIUM is not None  # the skipif above
    page = render_text(long_run(tmp_path / "run"), "html", RenderOptions(lang=lang, audience="client"))
    path = tmp_path / "timeline.html"
    path.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
    ]
    command = [CHROMIUM, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    match = re.search(r'data-extents="([^"]*)"', result.stdout)
    assert match, result.stderr[-2000:]
    extents = json.loads(html.unescape(match.group(1)))
    assert len(extents["boxes"]) > 5
    for x1, x2, y1, y2, text in extents["boxes"]:
        assert x1 >= -0.5 and x2 <= extents["width"] + 0.5, (text, x1, x2)
        assert y1 >= -0.5 and y2 <= extents["height"] + 0.5, (text, y1, y2)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *flags, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
         "--window-size=1000,900", path.as_uri()],
        capture_output=True, timeout=90, check=False,
    )  # fmt: skip
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1000, 900)
    assert len(set(image.resize((50, 45)).get_flattened_data())) > 20  # a drawn page, not a blank one
