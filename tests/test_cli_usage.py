"""Usage errors through the installed console script: one clean line on stderr, exit 2.

Runs the real ``bcdrill`` entry point in a subprocess (as CI and a user see it), whichever
click typer brings (its vendored ``typer._click`` or plain ``click``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


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
