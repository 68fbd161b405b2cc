"""A strict, bounded YAML reader for playbooks, environments and drill plans.

PyYAML composes the node graph (keeping a line/column mark on every node); this module then
builds plain Python values itself, so it controls exactly what YAML may mean:

* only plain data: strings, integers, floats, ``true``/``false``, null, lists, mappings —
  any other tag (``!!python/...``, ``!!binary``, ``!!timestamp``…) is a located error;
* YAML 1.2-style scalars: ``yes``/``no``/``on``/``off`` stay strings, ``22:22`` stays a
  string (no sexagesimal), ``0755`` stays a string (no silent octal), dates stay strings;
* duplicate keys are rejected (PyYAML silently keeps the last one);
* anchors, aliases and ``<<`` merge keys work, but the alias count, the expanded node count
  and the nesting depth are bounded, so an alias bomb fails in microseconds;
* one document per file, at most :data:`MAX_BYTES` bytes, UTF-8 text.

Every value's position is kept by JSON path (``("faults", 0, "duration")``), so a later
validation error can be reported as ``file:line:column: faults[0].duration: …``.
Every failure raises :class:`~engine.errors.InputError` whose ``problems`` name the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.composer import Composer
from yaml.error import Mark as YamlMark
from yaml.error import MarkedYAMLError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from engine.errors import InputError, Problem

__all__ = [
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "JsonPath",
    "Limits",
    "Mark",
    "YamlDocument",
    "field_name",
    "file_problem",
    "load_yaml",
    "parse_yaml",
]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1000
MAX_NODES = 100_000

JsonPath = tuple[str | int, ...]

_PREFIX = "tag:yaml.org,2002:"
STR_TAG = _PREFIX + "str"
INT_TAG = _PREFIX + "int"
FLOAT_TAG = _PREFIX + "float"
BOOL_TAG = _PREFIX + "bool"
NULL_TAG = _PREFIX + "null"
SEQ_TAG = _PREFIX + "seq"
MAP_TAG = _PREFIX + "map"
MERGE_TAG = _PREFIX + "merge"

_NULL = re.compile(r"~|null|Null|NULL|")
_TRUE = re.compile(r"true|True|TRUE")
_FALSE = re.compile(r"false|False|FALSE")
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_IMPLICIT = (
    (NULL_TAG, _NULL),
    (BOOL_TAG, _TRUE),
    (BOOL_TAG, _FALSE),
    (INT_TAG, _INT),
    (FLOAT_TAG, _FLOAT),
)
_ALLOWED = "plain YAML values (text, numbers, true/false, null, lists, mappings)"


@dataclass(frozen=True)
class Limits:
    """Bounds on what one YAML file may contain."""

    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH
    max_aliases: int = MAX_ALIASES
    max_nodes: int = MAX_NODES


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column in the source file."""

    line: int
    column: int


_NOWHERE = Mark(0, 0)


@dataclass(frozen=True)
class YamlDocument:
    """A loaded YAML mapping with the position of every value and every key."""

    file: str
    data: dict[str, Any]
    value_marks: Mapping[JsonPath, Mark]
    key_marks: Mapping[JsonPath, Mark]

    def mark(self, path: Sequence[str | int]) -> Mark:
        """Where the value at ``path`` starts, or its nearest existing parent."""
        path = tuple(path)
        for end in range(len(path), -1, -1):
            found = self.value_marks.get(path[:end])
            if found is not None:
                return found
        return Mark(1, 1)

    def key_mark(self, path: Sequence[str | int]) -> Mark:
        """Where the key of the entry at ``path`` is written (the value's mark otherwise)."""
        return self.key_marks.get(tuple(path)) or self.mark(path)

    def problem(self, path: Sequence[str | int], message: str, *, at_key: bool = False) -> Problem:
        """A :class:`Problem` for the value (or key) at ``path``."""
        where = self.key_mark(path) if at_key else self.mark(path)
        return Problem(self.file, where.line, where.column, field_name(path), message)


def field_name(path: Sequence[str | int]) -> str:
    """``("faults", 0, "params", "timeout")`` → ``faults[0].params.timeout``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def file_problem(file: str, message: str, mark: Mark = _NOWHERE) -> Problem:
    """A problem about a whole file (missing, unreadable…); line 0 means "no position"."""
    return Problem(file, mark.line, mark.column, "", message)


def _fail(file: str, message: str, mark: Mark = _NOWHERE) -> InputError:
    problem = file_problem(file, message, mark)
    return InputError(str(problem), (problem,))


def load_yaml(path: Path, limits: Limits = DEFAULT_LIMITS) -> YamlDocument:
    """Read ``path`` strictly; raise :class:`InputError` with located problems on any failure."""
    file = str(path)
    text = _decode(file, _read_bytes(path, limits), limits)
    return parse_yaml(text, file, limits)


def _read_bytes(path: Path, limits: Limits) -> bytes:
    file = str(path)
    try:
        if path.is_dir():
            raise _fail(file, "is a directory, not a YAML file")
        if not path.exists():
            raise _fail(file, "no such file")
        if not path.is_file():
            raise _fail(file, "is not a regular file")
        with path.open("rb") as stream:
            data = stream.read(limits.max_bytes + 1)
    except OSError as exc:
        raise _fail(file, f"cannot read the file: {exc.strerror or exc}") from exc
    if len(data) > limits.max_bytes:
        raise _fail(file, f"file is larger than the {_size(limits.max_bytes)} limit")
    return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def _decode(file: str, data: bytes, limits: Limits) -> str:
    if b"\x00" in data:
        where = _offset_mark(data, data.index(b"\x00"))
        raise _fail(file, "binary data (NUL byte), not YAML text", where)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = _offset_mark(data, exc.start)
        bad = data[exc.start]
        raise _fail(file, f"not UTF-8 text (byte 0x{bad:02x}), not a YAML file", where) from exc


def _offset_mark(data: bytes | str, offset: int) -> Mark:
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    before = data[:offset]
    line = before.count(newline) + 1
    column = offset - (before.rfind(newline) + 1) + 1
    return Mark(line, column)


def parse_yaml(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> YamlDocument:
    """Parse YAML ``text`` (named ``file`` in messages) into a :class:`YamlDocument`."""
    if len(text.encode()) > limits.max_bytes:
        raise _fail(file, f"file is larger than the {_size(limits.max_bytes)} limit")
    root = _compose(text, file, limits)
    if root is None:
        raise _fail(file, "is empty: expected a YAML mapping of fields", Mark(1, 1))
    if not isinstance(root, MappingNode) or root.tag != MAP_TAG:
        kind = _node_kind(root)
        raise _fail(file, f"the top level must be a mapping of fields, not {kind}", _mark(root))
    _measure(root, file, limits)
    builder = _Builder(file)
    data = builder.build(root, ())
    if builder.problems:
        raise InputError(str(builder.problems[0]), tuple(builder.problems))
    return YamlDocument(file, data, builder.value_marks, builder.key_marks)


def _node_kind(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return f"a {_show_tag(node.tag)} value"
    if node.tag == STR_TAG:
        return f"the text {_short(node.value)!r}"
    return f"the scalar {_short(node.value)!r}"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mark(node: Node | YamlMark) -> Mark:
    mark = node.start_mark if isinstance(node, Node) else node
    return Mark(mark.line + 1, mark.column + 1)


def _mark_of(exc: MarkedYAMLError) -> Mark:
    mark = exc.problem_mark or exc.context_mark
    return Mark(mark.line + 1, mark.column + 1) if mark is not None else Mark(1, 1)


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_PREFIX) :] if tag.startswith(_PREFIX) else tag


# ---------------------------------------------------------------- composing


class _LimitExceeded(MarkedYAMLError):
    """A bound (depth, aliases) was exceeded while composing."""


class _Resolver(BaseResolver):
    """YAML 1.2 core-schema resolution of plain scalars, plus the ``<<`` merge key."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is SequenceNode:
            return SEQ_TAG
        if kind is MappingNode:
            return MAP_TAG
        if implicit[0]:
            if value == "<<":
                return MERGE_TAG
            if _LEADING_ZERO.fullmatch(value):
                return STR_TAG  # neither octal (YAML 1.1) nor decimal: keep what was written
            for tag, pattern in _IMPLICIT:
                if pattern.fullmatch(value):
                    return tag
        return STR_TAG


class _StrictComposer(Reader, Scanner, Parser, Composer, _Resolver):
    """PyYAML's reader, scanner, parser and composer with depth and alias bounds."""

    def __init__(self, text: str, limits: Limits) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)
        self._limits = limits
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > self._limits.max_aliases:
                raise _LimitExceeded(
                    problem=f"more than {self._limits.max_aliases} aliases",
                    problem_mark=event.start_mark,  # type: ignore[arg-type]
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > self._limits.max_depth:
            raise _LimitExceeded(
                problem=f"nested deeper than {self._limits.max_depth} levels",
                problem_mark=event.start_mark,
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose(text: str, file: str, limits: Limits) -> Node | None:
    composer: _StrictComposer | None = None
    try:
        composer = _StrictComposer(text, limits)  # the reader checks characters right away
        return composer.get_single_node()
    except ReaderError as exc:
        where = _offset_mark(text, exc.position)
        raise _fail(file, f"not YAML text: character {chr(exc.character)!r} is not allowed", where) from exc
    except _LimitExceeded as exc:
        raise _fail(file, f"too complex: {exc.problem}", _mark_of(exc)) from exc
    except MarkedYAMLError as exc:
        raise _fail(file, _yaml_message(exc), _mark_of(exc)) from exc
    except RecursionError as exc:  # pragma: no cover - the depth bound comes first
        raise _fail(file, "too complex: nested too deeply") from exc
    finally:
        if composer is not None:
            composer.dispose()


def _yaml_message(exc: MarkedYAMLError) -> str:
    problem = exc.problem or "cannot be read"
    context = f" ({exc.context})" if exc.context else ""
    if (exc.context or "").startswith("expected a single document"):
        return "has more than one YAML document ('---'); put one document per file"
    return f"not valid YAML: {problem}{context}"


def _measure(root: Node, file: str, limits: Limits) -> None:
    """Bound the fully expanded size and depth of the graph (aliases are shared nodes)."""
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def visit(node: Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise _fail(file, "an alias refers to its own anchor (recursive data)", _mark(node))
        known = sizes.get(key)
        if known is None:
            active.add(key)
            size, height = 1, 1
            for child in _children(node):
                child_size, child_height = visit(child, depth + 1)
                size += child_size
                height = max(height, child_height + 1)
                if size > limits.max_nodes:
                    break
            active.discard(key)
            known = sizes[key] = (size, height)
        if depth + known[1] - 1 > limits.max_depth:
            raise _fail(
                file,
                f"too complex: nested deeper than {limits.max_depth} levels once aliases are expanded",
                _mark(node),
            )
        if known[0] > limits.max_nodes:
            raise _fail(
                file,
                f"too complex: more than {limits.max_nodes} values once aliases "
                "are expanded (an alias bomb?)",
                _mark(node),
            )
        return known

    visit(root, 1)


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value


# ---------------------------------------------------------------- building values


class _Builder:
    """Turns a measured node graph into plain values, recording marks and problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.value_marks: dict[JsonPath, Mark] = {}
        self.key_marks: dict[JsonPath, Mark] = {}
        self.problems: list[Problem] = []

    def _problem(self, node: Node, path: JsonPath, message: str) -> None:
        where = _mark(node)
        self.problems.append(Problem(self.file, where.line, where.column, field_name(path), message))

    def build(self, node: Node, path: JsonPath) -> Any:
        self.value_marks.setdefault(path, _mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (SEQ_TAG, MAP_TAG):
            self._problem(node, path, f"tag {_show_tag(node.tag)!r} is not allowed: only {_ALLOWED}")
            return None
        if isinstance(node, SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, MappingNode)  # scalars and sequences returned above
        return self._mapping(node, path)

    def _scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        tag, value = node.tag, node.value
        if tag == STR_TAG:
            return value
        if tag == NULL_TAG and _NULL.fullmatch(value):
            return None
        if tag == BOOL_TAG and (_TRUE.fullmatch(value) or _FALSE.fullmatch(value)):
            return value.lower() == "true"
        if tag == INT_TAG and _INT.fullmatch(value):
            return int(value, 0)
        if tag == FLOAT_TAG and (_FLOAT.fullmatch(value) and not _LEADING_ZERO.fullmatch(value)):
            return float(value)
        if tag in (NULL_TAG, BOOL_TAG, INT_TAG, FLOAT_TAG):
            self._problem(node, path, f"{value!r} cannot be read as {_show_tag(tag)}")
        else:
            self._problem(node, path, f"tag {_show_tag(tag)!r} is not allowed: only {_ALLOWED}")
        return None

    def _mapping(self, node: MappingNode, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, Mark] = {}
        merges: list[tuple[Node, JsonPath]] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG:
                merges.append((value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, path, "mapping keys must be plain text, not lists or mappings")
                continue
            key = key_node.value
            if key in seen:
                first = seen[key]
                self._problem(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first defined at line {first.line}, column {first.column})",
                )
                continue
            seen[key] = _mark(key_node)
            self.key_marks.setdefault((*path, key), seen[key])
            result[key] = self.build(value_node, (*path, key))
        for source, at in merges:
            self._merge(result, source, at)
        return result

    def _merge(self, result: dict[str, Any], source: Node, path: JsonPath) -> None:
        """Apply a ``<<`` merge: keys written in the mapping itself win; earlier sources win."""
        sources = source.value if isinstance(source, SequenceNode) else [source]
        for item in sources:
            if not isinstance(item, MappingNode):
                self._problem(item, path, "'<<' (merge) needs a mapping or a list of mappings")
                continue
            merged = self._mapping(item, path)
            for key, value in merged.items():
                result.setdefault(key, value)
