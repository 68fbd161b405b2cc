"""A long-lived bcdrill process running several drills (the warm case), for the benchmarks.

    python -m benchmarks.warm --env ENV --count N [--mode flow|drill|empty] [--profile FILE]

``flow``: the Prefect flow ``drill-run`` (heartbeat off, against ``PREFECT_API_URL``);
``drill``: ``DrillRun.execute()`` without Prefect; ``empty``: a Prefect flow of three tasks
that do nothing, against the same server (Prefect's own share of a flow run: its floor).
Prints one JSON line: per-run wall seconds, exit codes, the import time and the peak RSS of
this process.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "kill-web.yaml"


def main() -> None:
    """Run the drills and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", type=Path, required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--mode", choices=("flow", "drill", "empty"), default="flow")
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument text profile of one drill")
    args = parser.parse_args()
    count = max(1, min(args.count, 20))
    started = time.monotonic()
    from engine.flow import drill_run, fast_settings

    import_s = time.monotonic() - started
    runs = Path(tempfile.mkdtemp(prefix="bcdrill-bench-warm-"))
    walls: list[float] = []
    codes: list[int] = []
    with fast_settings():  # once per process, as a long-lived process sets its settings
        for i in range(count):
            profiler = _profiler(args.profile, i, count)
            t = time.monotonic()
            if args.mode == "flow":
                summary = drill_run(
                    playbook_path=str(SCENARIO),
                    environment_path=str(args.env),
                    runs_root=str(runs),
                    responders="auto",
                )
                assert isinstance(summary, dict), summary  # a drill-run ends with its summary
                codes.append(int(summary["exit_code"]))
            elif args.mode == "empty":
                codes.append(_empty_flow())
            else:
                codes.append(_drill(args.env, runs))
            walls.append(time.monotonic() - t)
            if profiler is not None:
                profiler.stop()
                args.profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"walls": walls, "codes": codes, "import_s": import_s, "rss_mib": rss_mib}))


@functools.cache
def _empty() -> Any:
    """One flow object for every run, as ``drill-run`` is one (a new one would register anew)."""
    from prefect import flow, task

    @task(name="nothing")
    def nothing(i: int) -> int:
        return i

    @flow(name="bench-empty", persist_result=False)
    def empty() -> int:
        return sum(nothing(i) for i in range(3))  # a drill's inject, revert and hold tasks

    return empty


def _empty_flow() -> int:
    return 0 if _empty()() == 3 else 1


def _drill(env: Path, runs: Path) -> int:
    from engine.plugins import resolve_parts
    from engine.record.runstore import create_run_dir, new_run_id
    from engine.run.runner import DrillRun, RunOptions
    from engine.spec.loader import load_environment, load_playbook

    playbook = load_playbook(SCENARIO)
    run_dir = create_run_dir(new_run_id(playbook.id), runs)
    parts = resolve_parts("auto", False)
    drill = DrillRun(playbook, load_environment(env), run_dir, RunOptions(responders="auto"), parts)
    return drill.execute().exit_code


def _profiler(path: Path | None, i: int, count: int) -> Any:
    """Profile the last drill (warm) when asked."""
    if path is None or i != count - 1:
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    return profiler


if __name__ == "__main__":
    main()
