"""Reports benchmark: a trend over N generated runs, and HTML + PDF for one drill.

    .venv/bin/python -m benchmarks.reports_bench             # 1,000 runs
    .venv/bin/python -m benchmarks.reports_bench --runs 5000

Goals (issue 6): trend over 1,000 runs under 2 s; HTML + PDF for one drill under 1 s.
The run store is generated in a temp folder (removed at the end): one real debrief from a
scripted journal, copied N times with different run ids, dates, clients and scores, plus
one journal per run so that it counts as a run. Measures; never fails a build.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from engine.record.signing import sign_run
from reports.debrief.compose import debrief_from_journal
from reports.debrief.trend import build_trend, trend_html, trend_json, trend_table
from reports.debrief_writer import summaries
from reports.i18n import translator
from reports.renderers import RenderOptions, render_bytes
from reports.testing import ScriptedRun, home_signing_key, step

GOAL_TREND_S = 2.0
GOAL_HTML_PDF_S = 1.0
CLIENTS = ("Acme Ltd", "Demo Bakery Ltd", "上海贸易有限公司", "Other Co")


def _sample_debrief(folder: Path) -> dict[str, Any]:
    run = ScriptedRun(folder)
    run.start(
        steps=(step("msp", "acknowledge", 120), step("client", "report", 300)), impact=(40, 1200.0, "EUR")
    )
    run.at(1).probe("web", "up").at(10).inject("stop-web").at(11).probe("web", "down")
    run.at(100).step("msp.acknowledge").at(400).step("client.report")
    run.at(600).revert("stop-web").at(601).probe("web", "up").at(605).end()
    return debrief_from_journal(run.path).to_json()


def generate(root: Path, count: int) -> None:
    """``count`` run folders with a ``debrief.json`` each, signed with the MSP key of
    ``$BCDRILL_HOME`` (made when it has none), as a client's record is."""
    key = home_signing_key()
    sample = _sample_debrief(root / "_sample")
    journal = (root / "_sample" / "journal.jsonl").read_bytes()
    start = datetime(2020, 1, 1, 9, tzinfo=UTC)
    for index in range(count):
        when = start + timedelta(days=index)
        run_id = f"{when:%Y%m%dT%H%M%SZ}-web-down-{index:04x}"
        data = dict(
            sample,
            run_id=run_id,
            client=CLIENTS[index % len(CLIENTS)],
            started_at=when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            score=float(40 + index * 7 % 60),
        )
        folder = root / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "journal.jsonl").write_bytes(journal)
        (folder / "debrief.json").write_text(json.dumps(data), encoding="utf-8")
        sign_run(folder, key, str(data["outcome"]), float(data["score"]), data)


def _timed(function: Callable[[], object], repeat: int) -> list[float]:
    times: list[float] = []
    for _ in range(repeat):
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
    return times


def main() -> None:
    """Generate the store, time the trend and the one-drill renders, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bcdrill-reports-bench-"))
    os.environ["BCDRILL_HOME"] = str(root / "home")  # the generated runs' signing key, and no other
    try:
        generate(root, args.runs)
        runs = root / "runs"
        t = translator("en")

        def trend_all() -> None:
            trend = build_trend(summaries(runs), "Acme Ltd")
            Console(file=io.StringIO(), width=160).print(trend_table(trend, t))
            trend_html(trend, t)
            trend_json(trend)

        trend_times = _timed(trend_all, args.repeat)
        debrief = debrief_from_journal(root / "_sample" / "journal.jsonl")
        render_bytes(debrief, "pdf")  # first call imports WeasyPrint and loads fonts

        def html_pdf() -> None:
            render_bytes(debrief, "html", RenderOptions())
            render_bytes(debrief, "pdf", RenderOptions(lang="zh-CN"))

        render_times = _timed(html_pdf, args.repeat)
        rows = (
            (f"trend over {args.runs} runs (read + table + html + json)", trend_times, GOAL_TREND_S),
            ("html + pdf (zh-CN) for one drill, warm", render_times, GOAL_HTML_PDF_S),
        )
        for name, times, goal in rows:
            median = statistics.median(times)
            verdict = "meets" if median < goal else "MISSES"
            print(
                f"{name}: median {median:.3f} s, max {max(times):.3f} s "
                f"(goal < {goal:g} s: {verdict}, {median / goal:.2f} of the budget)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
