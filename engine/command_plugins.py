"""The command line's start-up, kept light: only the plugin that owns the command asked for is
loaded, and plain values are converted without pydantic.

**Command plugins.** Every ``bcdrill.commands`` plugin costs its imports (the programme's pulls in
Prefect's helpers, the reports' the renderers): loading all of them for ``bcdrill report`` made a
light command slow. A plugin may therefore also list its command words under
``[project.entry-points."bcdrill.command_index"]`` (word = the same ``module:register``).
For a word found there, only that ``register`` runs; for anything else (help, an unknown word,
a plugin that lists nothing) every command plugin is loaded, as before.

**Values.** typer 0.29 converts every command-line value through a pydantic ``TypeAdapter``
built on first use: importing pydantic and building the adapters cost a command ~0.4 s of CPU
before it does anything (a third of ``bcdrill validate``). bcdrill's commands take plain values —
text, flags, whole and decimal numbers within bounds, paths, lists of those — so
:func:`install_plain_values` has typer convert those here, with typer's own path checks
(``exists``, ``dir_okay``…). Everything else, and every value that is not plainly valid (so that
typer's message for a bad value stays word for word the same), goes to typer's own conversion.
typer is pinned (``constraints.txt``); should a release convert values another way, typer is
left as it is — slower, not wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from engine.errors import RegistrationError

__all__ = ["INDEX_GROUP", "command_word", "install_plain_values", "load_command_plugins", "plain_converter"]

INDEX_GROUP = "bcdrill.command_index"


def command_word(argv: Sequence[str]) -> str | None:
    """The command asked for (first word that is not an option), None for help or nothing."""
    if "--help" in argv or "-h" in argv:
        return None
    return next((a for a in argv if not a.startswith("-")), None)


def _registered_words(app: Any) -> set[str]:
    words = {_word(c) for c in app.registered_commands}
    return words | {g.name for g in app.registered_groups if g.name}


def _load_indexed(app: Any, word: str, loaded: list[object]) -> bool:
    """Run the ``register`` listed for ``word``; True when ``word`` is then a command of ``app``."""
    from importlib.metadata import entry_points  # ~40 ms: not for the built-in commands

    found = [ep for ep in entry_points(group=INDEX_GROUP) if ep.name == word]
    for value in dict.fromkeys(ep.value for ep in found):  # one register per plugin, in order
        ep = next(e for e in found if e.value == value)
        try:
            register: Callable[[Any], None] = ep.load()
        except Exception as exc:
            raise RegistrationError(f"command set for {word!r} ({value}) failed to load: {exc}") from exc
        if not callable(register):
            raise RegistrationError(f"command set for {word!r}: {value} is not callable")
        register(app)
        loaded.append(register)
    return word in _registered_words(app)


def _load_all(app: Any, loaded: list[object]) -> None:
    from engine.plugins import COMMANDS

    for _name, register in COMMANDS.items():
        if not any(register is done for done in loaded):
            register(app)


def load_command_plugins(app: Any, argv: Sequence[str]) -> None:
    """Add to ``app`` the plugin commands needed to run ``argv`` (all of them when unsure)."""
    word = command_word(argv)
    if word is not None and word in _registered_words(app):
        _keep_only(app, word)  # a built-in command: no plugin needed
        return
    loaded: list[object] = []
    if word is not None and _load_indexed(app, word, loaded):
        _keep_only(app, word)
        return
    _load_all(app, loaded)


def _keep_only(app: Any, word: str) -> None:
    """Leave ``word`` the only command of ``app`` for this process: typer turns the signature of
    every registered command into parameters each time it runs (~50 ms for bcdrill's), and no
    other command can run in this process anyway. Help and unknown words keep them all."""
    app.registered_commands[:] = [c for c in app.registered_commands if _word(c) == word]
    app.registered_groups[:] = [g for g in app.registered_groups if g.name == word]


def _word(command: Any) -> str:
    return str(command.name or (command.callback.__name__ if command.callback else ""))


# ---------------------------------------------------------------- plain values

_INT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,18}(?:\.[0-9]{0,18})?|\.[0-9]{1,18})(?:[eE][+-]?[0-9]{1,3})?")

Convert = Callable[[Any, Any, Any], Any]
"""``convert(value, param, ctx)``: the converted value, or :class:`NotPlain`."""


class NotPlain(Exception):
    """typer's own conversion decides this value (and words its message if it is wrong)."""


def _text(value: Any, _param: Any, _ctx: Any) -> Any:
    if isinstance(value, str):
        return value
    raise NotPlain


def _flag(value: Any, _param: Any, _ctx: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise NotPlain


def _number(kind: type, pattern: re.Pattern[str], low: float | None, high: float | None) -> Convert:
    def convert(value: Any, _param: Any, _ctx: Any) -> Any:
        written = isinstance(value, str) and pattern.fullmatch(value)
        default = type(value) is int or (kind is float and type(value) is float)  # not a bool
        if not (written or default):
            raise NotPlain
        number = kind(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise NotPlain  # typer says which bound, in its words
        return number

    return convert


def _path(info: Any) -> Convert:
    from typer._param_types import coerce_cli_path

    def convert(value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and value:
            value = Path(value)
        if not isinstance(value, Path):
            raise NotPlain
        return coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)

    return convert


def _each(item: Convert) -> Convert:
    def convert(value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise NotPlain
        return [item(one, param, ctx) for one in value]

    return convert


def plain_converter(annotation: Any, info: Any) -> Convert | None:
    """The converter for a parameter of type ``annotation`` with typer's ``info`` (an
    ``OptionInfo``/``ArgumentInfo``); None when typer must convert it itself."""
    if info.parser is not None or getattr(info, "click_type", None) is not None:
        return None
    if get_origin(annotation) is list:
        (item,) = get_args(annotation) or (None,)
        inner = plain_converter(item, info) if item is not None else None
        return _each(inner) if inner is not None else None
    if annotation is str:
        return _text
    if annotation is bool:
        return _flag
    if annotation in (int, float) and not info.clamp:
        pattern = _INT if annotation is int else _FLOAT
        return _number(annotation, pattern, info.min, info.max)
    if annotation is Path and info.path_type in (None, Path) and not info.allow_dash:
        return _path(info)
    return None


def install_plain_values() -> bool:
    """Have typer convert plain values with :func:`plain_converter`; False if this typer differs."""
    try:
        from typer import core
        from typer._coercion import RuntimeParam
    except ImportError:
        return False
    found = getattr(core, "build_runtime_param", None)
    if found is None or getattr(found, "bcdrill_plain", False):
        return found is not None
    typers_own: Callable[[Any], Any] = found

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        descriptor: Any
        convert: Convert

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value, param, ctx)
            except NotPlain:
                return typers_own(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        convert = None
        if descriptor.file_annotation is None:
            convert = plain_converter(descriptor.annotation, descriptor.parameter_info)
        if convert is None:
            return typers_own(descriptor)
        return PlainRuntimeParam(descriptor.parameter_info, descriptor.annotation, descriptor, convert)

    build_runtime_param.bcdrill_plain = True  # type: ignore[attr-defined]
    core.build_runtime_param = build_runtime_param
    return True
