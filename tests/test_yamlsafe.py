"""The strict YAML reader: plain data only, bounded, every value located."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.spec.yamlsafe import MAX_BYTES, Limits, Mark, field_name, load_yaml, parse_yaml


def problems_of(text: str, limits: Limits | None = None) -> list[str]:
    with pytest.raises(InputError) as caught:
        parse_yaml(text, "x.yaml", limits or Limits())
    return [str(p) for p in caught.value.problems]


def test_yaml_1_1_surprises_stay_text() -> None:
    doc = parse_yaml(
        "a: no\nb: yes\nc: on\nd: OFF\ne: 22:22\nf: 0755\ng: 2024-01-01\nh: .inf\ni: y\n", "x.yaml"
    )
    assert doc.data == {
        "a": "no",
        "b": "yes",
        "c": "on",
        "d": "OFF",
        "e": "22:22",
        "f": "0755",
        "g": "2024-01-01",
        "h": ".inf",
        "i": "y",
    }


def test_core_scalars_resolve() -> None:
    text = "t: true\nf: False\nn: ~\ne:\ni: -12\no: 0o17\nx: 0x1f\nz: 0\nr: 1.5\ns: 1e3\nq: '12'\n"
    assert parse_yaml(text, "x.yaml").data == {
        "t": True,
        "f": False,
        "n": None,
        "e": None,
        "i": -12,
        "o": 15,
        "x": 31,
        "z": 0,
        "r": 1.5,
        "s": 1000.0,
        "q": "12",
    }


def test_explicit_safe_tags_convert_and_bad_ones_are_located() -> None:
    assert parse_yaml("a: !!str 12\nb: !!int '7'\n", "x.yaml").data == {"a": "12", "b": 7}
    assert problems_of("a: 1\nb: !!int '0755'\n") == ["x.yaml:2:4: b: '0755' cannot be read as !!int"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("k: !!python/object/apply:os.system ['id']\n", "!!python/object/apply:os.system"),
        ("k: !!python/name:os.system\n", "!!python/name:os.system"),
        ("k: !!binary aGVsbG8=\n", "!!binary"),
        ("k: !!timestamp 2024-01-01\n", "!!timestamp"),
        ("k: !!set {a: null}\n", "!!set"),
        ("k: !custom x\n", "!custom"),
    ],
)
def test_unsafe_tags_are_rejected_with_their_position(text: str, shown: str) -> None:
    message = problems_of(text)
    assert message == [
        f"x.yaml:1:4: k: tag {shown!r} is not allowed: only plain YAML values "
        "(text, numbers, true/false, null, lists, mappings)"
    ]


def test_duplicate_keys_name_both_places() -> None:
    assert problems_of("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n") == [
        "x.yaml:4:3: b.c: duplicate key 'c' (first defined at line 3, column 3)",
        "x.yaml:5:1: a: duplicate key 'a' (first defined at line 1, column 1)",
    ]


def test_quoted_and_plain_keys_are_the_same_key() -> None:
    assert problems_of("a: 1\n'a': 2\n") == [
        "x.yaml:2:1: a: duplicate key 'a' (first defined at line 1, column 1)"
    ]


def test_anchors_aliases_and_merge_keys_work() -> None:
    text = "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nl: [*b, *b]\n"
    assert parse_yaml(text, "x.yaml").data == {
        "base": {"x": 1, "y": 2},
        "m": {"x": 1, "y": 3},
        "l": [{"x": 1, "y": 2}, {"x": 1, "y": 2}],
    }


def alias_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_fails_fast() -> None:
    text = alias_bomb()
    assert len(text) < 600  # ~387 million values once expanded
    started = time.perf_counter()
    problems = problems_of(text)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05, f"alias bomb took {elapsed:.3f}s"
    assert problems == [
        "x.yaml:6:4: too complex: more than 100000 values once aliases are expanded (an alias bomb?)"
    ]


def test_alias_count_is_bounded() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 11) + "]\n"
    assert problems_of(text, Limits(max_aliases=10)) == ["x.yaml:2:45: too complex: more than 10 aliases"]


def test_recursive_alias_is_rejected() -> None:
    assert problems_of("a: &a [1, *a]\n") == [
        "x.yaml:1:4: an alias refers to its own anchor (recursive data)"
    ]


def test_deep_nesting_fails_at_the_limit_without_recursion_error() -> None:
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    assert problems_of(text) == ["x.yaml:1:67: too complex: nested deeper than 64 levels"]


def test_depth_counts_expanded_aliases() -> None:
    deep = "[" * 40 + "1" + "]" * 40
    text = f"a: &d {deep}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[*d]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
    assert problems_of(text) == [  # located at the anchor: the shared part that is too deep
        "x.yaml:1:4: too complex: nested deeper than 64 levels once aliases are expanded"
    ]


def test_nesting_at_the_limit_is_fine() -> None:
    text = "a: " + "[" * 63 + "]" * 63 + "\n"
    value = parse_yaml(text, "x.yaml").data["a"]
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    assert depth == 62


def test_single_document_only() -> None:
    assert problems_of("a: 1\n---\nb: 2\n") == [
        "x.yaml:2:1: has more than one YAML document ('---'); put one document per file"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "x.yaml:1:1: is empty: expected a YAML mapping of fields"),
        ("# just a comment\n", "x.yaml:1:1: is empty: expected a YAML mapping of fields"),
        ("- a\n- b\n", "x.yaml:1:1: the top level must be a mapping of fields, not a list"),
        (
            "hello world\n",
            "x.yaml:1:1: the top level must be a mapping of fields, not the text 'hello world'",
        ),
        ("a: b: c\n", "x.yaml:1:5: not valid YAML: mapping values are not allowed here"),
        (
            "a: [1, 2\n",
            "x.yaml:2:1: not valid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence)",
        ),
        ("a: *nope\n", "x.yaml:1:4: not valid YAML: found undefined alias 'nope'"),
    ],
)
def test_unreadable_documents(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


def test_tab_indentation_is_located() -> None:
    [message] = problems_of("a:\n\tb: 1\n")
    assert message.startswith("x.yaml:2:1: not valid YAML: found character '\\t'")


def test_marks_for_values_and_keys() -> None:
    doc = parse_yaml("top:\n  list:\n    - {id: a, n: 1}\n    - id: b\n", "x.yaml")
    assert doc.mark(("top", "list", 1, "id")) == Mark(4, 11)
    assert doc.key_mark(("top", "list", 1, "id")) == Mark(4, 7)
    assert doc.mark(("top", "list", 0, "n")) == Mark(3, 18)
    # a missing path falls back to its nearest existing parent
    assert doc.mark(("top", "list", 0, "missing", 3)) == Mark(3, 7)
    problem = doc.problem(("top", "list", 1, "id"), "bad id")
    assert str(problem) == "x.yaml:4:11: top.list[1].id: bad id"


def test_field_names() -> None:
    assert field_name(("faults", 0, "params", "timeout")) == "faults[0].params.timeout"
    assert field_name(("urls", "my site")) == "urls['my site']"
    assert field_name(()) == ""


def test_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("a: 1\n")
    assert load_yaml(good).data == {"a": 1}
    assert load_yaml(good).file == str(good)


def file_problems(path: Path, limits: Limits | None = None) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_yaml(path, limits or Limits())
    return [str(p) for p in caught.value.problems]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert file_problems(tmp_path / "nope.yaml") == [f"{tmp_path}/nope.yaml: no such file"]
    assert file_problems(tmp_path) == [f"{tmp_path}: is a directory, not a YAML file"]


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text("items:\n" + "  - 12345678901234567890\n" * (MAX_BYTES // 24 + 10))
    assert huge.stat().st_size > MAX_BYTES
    started = time.perf_counter()
    assert file_problems(huge) == [f"{huge}: file is larger than the 1 MiB limit"]
    assert time.perf_counter() - started < 0.5


def test_binary_junk(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"a: 1\nb: \x00\x01\x02\xff\xfe")
    assert file_problems(junk) == [f"{junk}:2:4: binary data (NUL byte), not YAML text"]


def test_not_utf8(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("a: 1\ntitle: caf\xe9\n".encode("latin-1"))
    assert file_problems(latin) == [f"{latin}:2:11: not UTF-8 text (byte 0xe9), not a YAML file"]


def test_control_characters(tmp_path: Path) -> None:
    ctrl = tmp_path / "ctrl.yaml"
    ctrl.write_bytes(b"a: 1\nb: x\x07y\n")
    assert file_problems(ctrl) == [f"{ctrl}:2:5: not YAML text: character '\\x07' is not allowed"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: caf\xc3\xa9\n")
    assert load_yaml(bom).data == {"a": "café"}
