"""bcdrill reports: the scored debrief of a drill run, computed from its journal alone.

- :mod:`reports.debrief` — ``debrief_from_journal(path) -> Debrief`` (pure, deterministic)
- :mod:`reports.scoring` / :mod:`reports.findings` — scoring v1 and the improvement plan
- :mod:`reports.renderers` — ``render(debrief, "md" | "html" | "json" | "junit")``
- :mod:`reports.debrief_writer` — ``write_debrief(run_dir)``, the engine's debriefer
- :mod:`reports.terminal` — ``print_scorecard(debrief, console)``
- :mod:`reports.testing` — write real journals with a fake clock, for tests

See ``docs/scoring.md``.
"""
