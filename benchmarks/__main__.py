"""``python -m benchmarks``: run the benchmark families, print a table, write JSON.

    python -m benchmarks                 # everything (~10 minutes on 2 cores)
    python -m benchmarks --quick         # fewer repetitions, smaller fan-out (< 1 minute)
    python -m benchmarks --only latency --only fanout
    python -m benchmarks --only light    # validate and ack vs Chaos Toolkit; needs no lab
    python -m benchmarks --only programme  # 100 secret-time drills on Prefect + PostgreSQL (~15 min)
    python -m benchmarks --only runner   # one-shot `bcdrill run` through the long-lived runner
    python -m benchmarks --out results.json

Families: latency, fanout, fidelity, overhead, memory, light, runner, programme. Figures with a Chaos Toolkit
twin are also printed side by side with their ratio (``benchmarks/sidebyside.py``). Results go to
``benchmarks/results/latest.json`` (git-ignored) unless ``--out`` says otherwise.
Benchmarks measure; they never fail a build. The exit code is 0 unless a family crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH_DIR, Report, bench_lab, machine, versions
from benchmarks.sidebyside import side_by_side

FAMILIES = ("latency", "fanout", "fidelity", "overhead", "memory", "light", "runner", "programme")
NO_LAB = frozenset({"light", "programme"})  # families that need no Docker lab (programme makes its own)
DEFAULT_OUT = BENCH_DIR / "results" / "latest.json"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (< 1 minute)")
    parser.add_argument("--only", action="append", choices=FAMILIES, help="run only these families")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    parser.add_argument("--profile", action="store_true", help="also profile a warm drill (pyinstrument)")
    return parser.parse_args(argv)


def _runner(name: str) -> Callable[[Report, Any, bool], None]:
    if name == "latency":
        from benchmarks import latency

        return lambda report, lab, quick: latency.run(report, lab, 3 if quick else 12, quick)
    if name == "fanout":
        from benchmarks import fanout

        return lambda report, lab, quick: fanout.run(report, quick)
    if name == "fidelity":
        from benchmarks import fidelity

        return lambda report, lab, quick: fidelity.run(report, lab, quick)
    if name == "programme":
        from benchmarks import programme

        return lambda report, lab, quick: programme.run(report, quick)
    if name == "light":
        from benchmarks import light

        return lambda report, lab, quick: light.run(report, quick)
    if name == "runner":
        from benchmarks import runner

        return lambda report, lab, quick: runner.run(report, lab, quick)
    if name == "overhead":
        from benchmarks import overhead

        return lambda report, lab, quick: overhead.run(report, lab, quick)
    from benchmarks import memory

    return lambda report, lab, quick: memory.run(report, lab, quick)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen families and return the exit code."""
    args = _parse(argv)
    _quiet_logs()
    families = args.only or list(FAMILIES)
    report = Report(quick=args.quick)
    started = time.monotonic()
    timings: dict[str, float] = {}
    needs_lab = bool(set(families) - NO_LAB) or args.profile
    with _private_tmp(), bench_lab() if needs_lab else contextlib.nullcontext() as lab:
        for name in families:
            t = time.monotonic()
            print(f"bench: {name}…", file=sys.stderr, flush=True)
            try:
                _runner(name)(report, lab, args.quick)
            except Exception as exc:  # one broken family must not hide the others' figures
                report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            timings[name] = round(time.monotonic() - t, 1)
        if args.profile:
            from benchmarks import overhead

            assert lab is not None  # a profile brings the lab up (needs_lab)
            report.profiles["warm_drill"] = overhead.profile_warm_drill(lab)
    payload = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "families": families,
        "machine": machine(),
        "versions": versions(),
        "elapsed_s": round(time.monotonic() - started, 1),
        "family_elapsed_s": timings,
        "figures": [f.to_json() for f in report.figures],
        "notes": report.notes,
        "errors": report.errors,
        "profiles": report.profiles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(render_table(payload))
    print(f"\nwritten: {args.out}")
    return 1 if report.errors else 0


@contextlib.contextmanager
def _private_tmp() -> Iterator[None]:
    """Every temp folder of this run (and its children's) under one root, removed at the end."""
    root = tempfile.mkdtemp(prefix="bcdrill-bench-")
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = root, root
    try:
        yield
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(root, ignore_errors=True)


def render_table(payload: dict[str, object]) -> str:
    """The human table: one line per figure, with goal and verdict."""
    m, v = payload["machine"], payload["versions"]
    assert isinstance(m, dict) and isinstance(v, dict)
    lines = [
        f"bcdrill benchmarks — {payload['date']} — {m['nproc']} cores, {m['memory_mib']} MiB, "
        f"kernel {m['kernel']}, load {m['loadavg_1m']}",
        "versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        f"{'family':9} {'figure':52} {'n':>4} {'median':>10} {'p95':>10}  goal",
    ]
    figures = payload["figures"]
    assert isinstance(figures, list)
    for fig in figures:
        stats = fig["stats"]
        verdict = {True: "met", False: "MISSED", None: ""}[fig["met"]]
        goal = f"{fig['goal']} {verdict}".strip()
        lines.append(
            f"{fig['family']:9} {fig['name'][:52]:52} {stats['n']:>4} "
            f"{_num(stats['median'], fig['unit']):>10} {_num(stats['p95'], fig['unit']):>10}  {goal}"
        )
    lines += side_by_side(figures)
    notes = payload.get("notes") or []
    assert isinstance(notes, list)
    lines += ["", *[f"note: {n}" for n in notes]]
    errors = payload.get("errors") or []
    assert isinstance(errors, list)
    lines += [f"ERROR: {e}" for e in errors]
    return "\n".join(lines)


def _num(value: object, unit: str) -> str:
    if value is None:
        return "—"
    assert isinstance(value, int | float)
    return f"{value:.1f} {unit}" if unit != "s" else f"{value:.3f} s"


def _quiet_logs() -> None:
    """Keep engine info logs out of the table (warnings still show)."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


if __name__ == "__main__":
    sys.exit(main())
