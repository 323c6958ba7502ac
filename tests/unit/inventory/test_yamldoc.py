"""Reading YAML: data as safe_load reads it, lines for every path, the mistakes it hides."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.conftest import REFERENCE
from vllmfleet.errors import InventoryError, Problem
from vllmfleet.inventory import yamldoc
from vllmfleet.inventory.yamldoc import Document, Lines, read_yaml

SHIPPED = REFERENCE.read_text()


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with libyaml's parser (when PyYAML has it) and with the pure-Python one."""
    if request.param == "pure-python":
        monkeypatch.setattr(yamldoc, "_FAST", False)
    elif not yamldoc._FAST:
        pytest.skip("PyYAML is built without libyaml")
    yield request.param


def read(text: str) -> Document:
    return read_yaml(text, file="t.yaml")


def error(text: str) -> Problem:
    with pytest.raises(InventoryError) as info:
        read(text)
    return info.value.problems[0]


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_reads_what_safe_load_reads(parser: str) -> None:
    doc = read(SHIPPED)
    assert doc.data == yaml.safe_load(SHIPPED)
    assert doc.problems == []


def test_every_path_has_its_line(parser: str) -> None:
    lines = read(SHIPPED).lines
    assert lines.of("proxy") == line_of(SHIPPED, "proxy:")
    assert lines.of("proxy.request_timeout_s") == line_of(SHIPPED, "request_timeout_s:")
    assert lines.of("hosts.armitage.vllm.max_model_len") == line_of(
        SHIPPED, "max_model_len: 8192")
    assert lines.of("aliases.qwen2.5-7b-armitage.also[0]") == line_of(
        SHIPPED, "also: [local/chat]")
    # a key that is not in the file: the line of its nearest ancestor that is
    assert lines.of("aliases.qwen2.5-7b-armitage.on_max_output") == line_of(
        SHIPPED, "  qwen2.5-7b-armitage:")
    assert lines.of("nowhere.at.all") == line_of(SHIPPED, "hosts:")


def test_scalars_keep_the_text_as_written() -> None:
    lines = read('a: no\nb: "8.9"\nc: 8.90\nd: [0x1F]\n').lines
    assert (lines.raw("a"), lines.raw("b"), lines.raw("c"), lines.raw("d[0]")) == (
        "no", "8.9", "8.90", "0x1F")
    assert lines.raw("e") is None


def test_lines_without_a_document() -> None:
    assert Lines().of("hosts.x") is None


@pytest.mark.parametrize("text", ["", "# just a comment\n", "---\n"])
def test_an_empty_document_is_none(text: str) -> None:
    assert read(text).data is None


def test_duplicate_keys_name_both_lines(parser: str) -> None:
    text = "hosts:\n  a: 1\n  b: 2\n  'a': 3\nproxy: {x: 1, x: 2}\nhosts: {}\n"
    doc = read(text)
    found = {(p.path, p.line): p.message for p in doc.problems}
    assert found == {
        ("hosts.a", 4): "key 'a' is given twice, on lines 2 and 4; YAML would silently keep "
                        "only the last one",
        ("proxy.x", 5): "key 'x' is given twice, on lines 5 and 5; YAML would silently keep "
                        "only the last one",
        ("hosts", 6): "key 'hosts' is given twice, on lines 1 and 6; YAML would silently keep "
                      "only the last one",
    }
    assert all(p.severity == "error" and p.fix.startswith("remove one") for p in doc.problems)


def test_the_same_key_in_different_mappings_is_fine() -> None:
    assert read("a: {port: 1}\nb: {port: 1}\nc: [{port: 1}, {port: 2}]\n").problems == []


@pytest.mark.parametrize(("text", "kind", "raw"), [
    ("8000: x\n", "a number", "8000"),
    ("1.5: x\n", "a number", "1.5"),
    ("yes: x\n", "true/false", "yes"),
    ("~: x\n", "null (nothing)", "~"),
    ("2024-01-02: x\n", "a date", "2024-01-02"),
])
def test_keys_that_are_not_strings(text: str, kind: str, raw: str) -> None:
    (problem,) = read(text).problems
    assert problem.line == 1
    assert problem.message == f"key {raw!r} is read by YAML as {kind}, not as a name"
    assert problem.fix == f"quote it: '{raw}':"


def test_a_quoted_number_is_a_fine_key() -> None:
    doc = read("'8000': x\n\"yes\": y\n")
    assert doc.problems == [] and doc.data == {"8000": "x", "yes": "y"}


def test_a_list_as_a_key_is_an_error(parser: str) -> None:
    with pytest.raises(InventoryError) as info:
        read("hosts:\n  ? [a, b]\n  : c\n")
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == ("hosts.?", 2)
    assert "plain name" in problem.message


@pytest.mark.parametrize(("text", "line", "words"), [
    ("a: 1\nb: 2024-13-45\n", 2, "'2024-13-45' looks like a date to YAML but is not a valid one"),
    ("a: !!int twelve\n", 1, "'twelve' looks like a number to YAML"),
    ("a: !!float x\n", 1, "'x' looks like a number to YAML"),
    ("a:\n  b: !!binary 'a'\n", 2, "binary data"),
])
def test_scalars_yaml_cannot_read(text: str, line: int, words: str) -> None:
    with pytest.raises(InventoryError) as info:
        read(text)
    (problem,) = info.value.problems
    assert problem.line == line
    assert words in problem.message
    assert "quote it" in problem.fix


@pytest.mark.parametrize("text", [
    "a: !!python/object/apply:os.system [echo hi]\n",
    "a: !!python/name:os.system ''\n",
    "a: !Ref b\n",
])
def test_tags_are_refused(text: str) -> None:
    problem = error(text)
    assert "is not allowed in an inventory" in problem.message
    assert problem.path == "a" and problem.line == 1


def test_merge_keys_are_read_and_lines_point_at_the_anchor(parser: str) -> None:
    text = "base: &b\n  user: ops\n  port: 22\nhost:\n  <<: *b\n  port: 2222\n"
    doc = read(text)
    assert doc.problems == []  # an explicit key overriding a merged one is not a duplicate
    assert doc.data["host"] == {"user": "ops", "port": 2222}
    assert doc.lines.of("host.port") == 6
    assert doc.lines.of("host.user") == 2


def test_recursive_anchors_do_not_hang(parser: str) -> None:
    doc = read("a: &x [1, *x]\nb: &y {k: *y}\n")
    assert doc.data["a"][1] is doc.data["a"]
    assert doc.lines.of("a[1]") == 1


def test_an_alias_bomb_is_read_without_expanding_it(parser: str) -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True))
    doc = read(text)  # 10**9 leaves if expanded
    assert doc.lines.of("i[9][9][9][9][9][9][9][9][9]") == 9  # i: is on line 9


@pytest.mark.parametrize("text", ["[" * 5000, "- " * 50000, "{a: " * 5000, "? " * 50000])
def test_runaway_nesting_is_an_error_not_a_crash(text: str) -> None:
    # yaml.CSafeLoader's C composer crashes the interpreter on the second one
    problem = error(text)
    assert "nested too deeply" in problem.message


@pytest.mark.parametrize(("text", "line", "words", "fix"), [
    ("a:\n\tb: 1\n", 2, "found character '\\t' that cannot start any token", "spaces, not tabs"),
    ("a: *nope\n", 1, "found undefined alias 'nope'", "&name"),
    ("a: b: c\n", 1, "mapping values are not allowed here", "quote a value"),
    ("a: [1, 2\n", 2, "expected ',' or ']'", "indentation and quoting"),
    ("a: 'open\n", 2, "found unexpected end of stream", "indentation and quoting"),
    ("a: 1\n---\nb: 2\n", 2, "expected a single document", "extra ---"),
    ("a: 1\nb: \x00\n", 2, "control character #x0000", "UTF-8 text"),
    ("a: 1\n\ufffeb: 2\n", 2, "control character #xfffe", "UTF-8 text"),
    ("a:\n  <<: 5\n", 2, "expected a mapping or list of mappings for merging", "<<: *name"),
])
def test_broken_yaml_is_explained_in_pyyamls_words(text: str, line: int, words: str,
                                                    fix: str, parser: str) -> None:
    problem = error(text)
    assert problem.line == line and problem.file == "t.yaml" and problem.path == ""
    assert problem.message.startswith("not valid YAML: ")
    assert words in problem.message
    assert fix in problem.fix


def test_with_a_duplicate_the_line_and_text_are_of_the_value_yaml_keeps() -> None:
    doc = read("a: 1\nb: 2\na: no\n")
    assert doc.data["a"] is False  # PyYAML keeps the last one ...
    assert (doc.lines.of("a"), doc.lines.raw("a")) == (3, "no")  # ... so messages quote it
