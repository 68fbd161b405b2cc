"""Load only the command plugin that owns the command asked for.

Every ``bcdrill.commands`` plugin costs its imports (the programme's pulls in Prefect's
helpers, the reports' the renderers): loading all of them for ``bcdrill report`` made a light
command slow. A plugin may therefore also list its command words under
``[project.entry-points."bcdrill.command_index"]`` (word = the same ``module:register``).
For a word found there, only that ``register`` runs; for anything else (help, an unknown word,
a plugin that lists nothing) every command plugin is loaded, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from engine.errors import RegistrationError

__all__ = ["INDEX_GROUP", "command_word", "load_command_plugins"]

INDEX_GROUP = "bcdrill.command_index"


def command_word(argv: Sequence[str]) -> str | None:
    """The command asked for (first word that is not an option), None for help or nothing."""
    if "--help" in argv or "-h" in argv:
        return None
    return next((a for a in argv if not a.startswith("-")), None)


def _registered_words(app: Any) -> set[str]:
    words = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return words | {g.name for g in app.registered_groups if g.name}


def _load_indexed(app: Any, word: str, loaded: list[object]) -> bool:
    """Run the ``register`` listed for ``word``; True when ``word`` is then a command of ``app``."""
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
        return  # a built-in command: no plugin needed
    loaded: list[object] = []
    if word is not None and _load_indexed(app, word, loaded):
        return
    _load_all(app, loaded)
