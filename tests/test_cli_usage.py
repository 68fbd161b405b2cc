"""Usage errors through the installed console script: one clean line on stderr, exit 2.

Runs the real ``bcdrill`` entry point in a subprocess (as CI and a user see it), whichever
click typer brings (its vendored ``typer._click`` or plain ``click``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BCDRILL, REPO, run_cli


def _one_clean_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "typer._click" not in stderr and "click.exceptions" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("run",), "Missing argument"),
        (("validate", "--nope", "x.yaml"), "No such option"),
        (("nosuchcmd",), "No such command"),
        (("ack", "a", "b"), "Missing option"),
        (("lab", "up", "--hosts", "many"), "Invalid value"),
        (("recover", "a", "b"), "unexpected extra argument"),
    ],
)
def test_every_usage_error_is_one_line_and_exit_2(args: tuple[str, ...], expected: str) -> None:
    result = run_cli(*args, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    line = _one_clean_line(result.stderr)
    assert line.startswith("bcdrill: ") and expected in line, line
    assert result.stdout == ""


def test_a_plugin_command_usage_error_is_one_line_and_exit_2() -> None:
    result = run_cli("report", timeout=60)  # a command from reports/, registered by entry point
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Missing argument" in _one_clean_line(result.stderr)


def test_validate_prints_line_100_as_a_number_not_an_emoji(tmp_path: Path) -> None:
    playbook = tmp_path / "long.yaml"
    filler = "".join(f"# line {n}\n" for n in range(1, 99))
    playbook.write_text(f"{filler}format: playbook/v1\nid: Bad_Id\n")  # line 100: id
    result = run_cli("validate", str(playbook), timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{playbook}:100:" in result.stderr, result.stderr
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--responders", "manual"), "no signing key is configured: run `bcdrill keys init`"),
        (("--responders", "simulate"), "answered by people in real time"),
        (("--responders", "manual", "--time-scale", "0.1"), "not with time scale 0.1"),
    ],
)
def test_an_official_drill_without_people_in_real_time_or_a_key_never_starts(
    extra: tuple[str, ...], expected: str, tmp_path: Path
) -> None:
    """``--class drill`` makes the client's signed record: refused, exit 2, before anything runs."""
    env = {k: v for k, v in os.environ.items() if k != "BCDRILL_SIGNING_KEY"}
    env["BCDRILL_HOME"] = str(tmp_path / "home")  # no key made here
    runs = tmp_path / "runs"
    args = ["run", str(REPO / "playbooks" / "storefront-down.yaml"), "--env", str(tmp_path / "env.yaml")]
    result = subprocess.run(
        [BCDRILL, *args, "--class", "drill", "--runs", str(runs), "--in-process", *extra],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert not runs.exists()  # no run was even opened
