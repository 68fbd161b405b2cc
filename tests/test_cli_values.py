"""Plain command-line values converted without pydantic give what typer's own conversion gives:
the same values, and for a bad value the same message and exit code (``engine.command_plugins``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer import core
from typer._coercion import build_runtime_param as typers_own
from typer.testing import CliRunner

from engine import command_plugins

command_plugins.install_plain_values()
PLAIN = core.build_runtime_param


def _app(seen: dict[str, Any]) -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command()
    def cmd(
        files: Annotated[list[Path], typer.Argument()],
        count: Annotated[int, typer.Option(min=1, max=5)] = 2,
        scale: Annotated[float, typer.Option(min=0.001, max=10.0)] = 1.0,
        seed: Annotated[int | None, typer.Option()] = None,
        name: Annotated[str, typer.Option()] = "x",
        home: Annotated[Path | None, typer.Option(exists=True, file_okay=False)] = None,
        flag: Annotated[bool, typer.Option("--flag/--no-flag")] = False,
    ) -> None:
        seen.update(files=files, count=count, scale=scale, seed=seed, name=name, home=home, flag=flag)

    return app


VALID = [
    ["a.yaml"],
    ["a.yaml", "b/c.yaml", "--count", "5", "--scale", "0.01", "--seed", "-3", "--name", "ünï"],
    ["a", "--count", "004", "--scale", "1e-2", "--seed", "+4", "--flag"],
    ["a", "--scale", ".5", "--count", "1"],
]
CASES = [
    *VALID,
    ["a", "--count", "007"],  # above the bound: typer's message
    ["a", "--count", "0"],
    ["a", "--count", "six"],
    ["a", "--count", " 3"],  # not plain: typer decides (and accepts)
    ["a", "--count", "1_0"],
    ["a", "--scale", "11"],
    ["a", "--scale", "nan"],
    ["a", "--seed", "1.5"],
    ["a", "--home", "{tmp}"],
    ["a", "--home", "{tmp}/missing"],
    ["a", "--home", "{tmp}/file"],
    ["a", "--name", ""],
    [],
]


def _invoke(build: Any, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, dict[str, Any]]:
    monkeypatch.setattr(core, "build_runtime_param", build)
    seen: dict[str, Any] = {}
    result = CliRunner().invoke(_app(seen), argv)
    return result.exit_code, result.output, seen


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c) or "none" for c in CASES])
def test_plain_values_convert_as_typer_does(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    theirs = _invoke(typers_own, argv, monkeypatch)
    ours = _invoke(PLAIN, argv, monkeypatch)
    assert ours == theirs
    for value, other in zip(ours[2].values(), theirs[2].values(), strict=True):
        assert type(value) is type(other)


def test_only_plain_kinds_are_converted_here() -> None:
    option = typer.models.OptionInfo
    assert command_plugins.plain_converter(int, option(min=1)) is not None
    assert command_plugins.plain_converter(list[Path], option()) is not None
    assert command_plugins.plain_converter(int, option(clamp=True, min=1)) is None
    assert command_plugins.plain_converter(str, option(parser=str.upper)) is None
    assert command_plugins.plain_converter(Path, option(allow_dash=True)) is None
    assert command_plugins.install_plain_values()  # a second install keeps the first
    assert core.build_runtime_param is PLAIN


def test_plain_values_need_no_type_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer import _adapters

    def refuse(*_args: Any) -> None:
        raise AssertionError("a pydantic TypeAdapter was built for a plain value")

    monkeypatch.setattr(_adapters, "try_build_adapter", refuse)
    for argv in VALID:
        code, output, seen = _invoke(PLAIN, argv, monkeypatch)
        assert code == 0, output
        assert seen["files"][0] == Path(argv[0])
