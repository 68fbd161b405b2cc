"""Family 5: peak RSS of the engine process during a drill (goal ≤ 150 MiB).

Cold processes are measured from outside (``os.wait4`` rusage of the ``bcdrill run`` child);
warm ones report ``ru_maxrss`` of themselves. The overhead family collects these figures
while it runs the drills anyway; run alone, this family does one cold and one warm drill.
"""

from __future__ import annotations

from benchmarks.common import MEMORY_FAMILY as FAMILY
from benchmarks.common import BenchLab, Report, prefect_server, report_rss
from benchmarks.overhead import _base_env, bcdrill_cold, warm_bcdrill


def run(report: Report, lab: BenchLab, quick: bool) -> None:
    """One cold ``bcdrill run`` against a local server and one warm process of two drills."""
    if any(f.family == FAMILY for f in report.figures):
        return  # the overhead family measured it already
    with prefect_server() as server_env:
        env = {**_base_env(lab), **server_env}
        _, peak = bcdrill_cold(lab, env)
        report_rss(report, "bcdrill run process (local server)", [peak])
        warm = warm_bcdrill(lab, env, "flow", 2)
        report_rss(report, "warm process, 2 flow drills", [warm["rss_mib"]])
