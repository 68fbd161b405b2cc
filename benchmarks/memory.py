"""Family 5: peak RSS of the engine process during a drill (goal ≤ 150 MiB).

Cold processes are measured from outside (``os.wait4`` rusage of the ``bcdrill run`` child);
warm ones report ``ru_maxrss`` of themselves. The overhead family collects these figures
while it runs the drills anyway; run alone, this family does one cold and one warm drill.
"""

from __future__ import annotations

from benchmarks.common import BenchLab, Report, figure, prefect_server

FAMILY = "memory"
GOAL_MIB = 150.0


def report_rss(report: Report, name: str, samples_mib: list[float]) -> None:
    """Add a peak-RSS figure (MiB) with the 150 MiB goal on the maximum."""
    fig = figure(FAMILY, f"peak RSS: {name}", samples_mib, unit="MiB")
    met = fig.stats.maximum <= GOAL_MIB if fig.stats.n else None
    report.add(type(fig)(fig.family, fig.name, fig.unit, fig.stats, f"max ≤ {GOAL_MIB:g} MiB", met, fig.note))


def run(report: Report, lab: BenchLab, quick: bool) -> None:
    """One cold ``bcdrill run`` against a local server and one warm process of two drills."""
    if any(f.family == FAMILY for f in report.figures):
        return  # the overhead family measured it already
    from benchmarks.overhead import _base_env, bcdrill_cold, warm_bcdrill

    with prefect_server() as server_env:
        env = {**_base_env(lab), **server_env}
        _, peak = bcdrill_cold(lab, env)
        report_rss(report, "bcdrill run process (local server)", [peak])
        warm = warm_bcdrill(lab, env, "flow", 2)
        report_rss(report, "warm process, 2 flow drills", [warm["rss_mib"]])
