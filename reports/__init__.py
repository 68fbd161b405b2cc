"""bcdrill reports: the scored debrief of a drill run, computed from its journal alone.

- :mod:`reports.debrief.compose` — ``debrief_from_journal(path) -> Debrief`` (pure, deterministic)
- :mod:`reports.debrief.scoring` / :mod:`reports.debrief.findings` — scoring v1 and the improvement plan
- :mod:`reports.renderers` — ``render(debrief, "md" | "html" | "pdf" | "json" | "junit",
  RenderOptions(lang, tz, audience))``
- :mod:`reports.i18n` — message catalogues (``locales/en.json``, ``locales/zh-CN.json``)
- :mod:`reports.debrief.audience` — the client version of a debrief (internal notes left out)
- :mod:`reports.debrief.history` — improvements carried across drills, comparison (pure)
- :mod:`reports.debrief_writer` — ``write_debrief(run_dir)``, the engine's debriefer (I/O)
- :mod:`reports.debrief.trend` / :mod:`reports.portal.app` — ``bcdrill trend`` and ``bcdrill serve``
- :mod:`reports.terminal` — ``print_scorecard(debrief, console, lang, tz)``
- :mod:`reports.testing` — write real journals with a fake clock, for tests

See ``docs/scoring.md``.
"""
