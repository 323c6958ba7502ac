"""Building typed dataclasses from YAML: what is accepted, and how each mistake is worded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from vllmfleet.errors import Problem
from vllmfleet.inventory.schema import Context, build, describe, meta, show, spec
from vllmfleet.inventory.yamldoc import read_yaml


@dataclass(frozen=True, kw_only=True)
class Inner:
    user: str = spec(help="the login user", example="ops")
    port: int = spec(default=22, ge=1, le=65535, help="a TCP port between 1 and 65535")


@dataclass(frozen=True, kw_only=True)
class Thing:
    name: str
    count: int = spec(ge=1, le=10, help="how many (1-10)", example="2")
    ratio: float = spec(default=0.5, gt=0, le=1, help="a fraction in (0, 1]", example="0.9")
    label: str = spec(default="x", pattern=r"[a-z]+", help="lower-case letters", example="abc")
    mode: Literal["no", "auto", "fp8"] = "auto"
    flag: bool = False
    tags: list[str] = field(default_factory=list, metadata=meta(help="names", example="[a, b]"))
    sizes: dict[str, float] = field(default_factory=dict, metadata=meta(gt=0, help="GiB"))
    inner: Inner | None = None
    login: Inner = field(metadata=meta(help="how to log in", example="{user: ops}"))


def build_from(text: str) -> tuple[Thing | None, list[Problem]]:
    doc = read_yaml(text, file="t.yaml")
    ctx = Context(file="t.yaml", lines=doc.lines)
    thing = build(ctx, "", doc.data, Thing, label="one", name="one")
    return thing, ctx.problems


def only(text: str) -> Problem:
    thing, problems = build_from(text)
    assert thing is None
    assert len(problems) == 1, problems
    return problems[0]


VALID = "count: 3\nlogin: {user: ops}\n"


def test_a_valid_mapping_becomes_the_dataclass() -> None:
    thing, problems = build_from(
        VALID + "ratio: 1\nmode: fp8\nflag: true\ntags: [a, b]\nsizes: {bf16: 2}\n"
        "inner: {user: root, port: 2222}\n")
    assert problems == []
    assert thing == Thing(name="one", count=3, ratio=1.0, mode="fp8", flag=True, tags=["a", "b"],
                          sizes={"bf16": 2.0}, inner=Inner(user="root", port=2222),
                          login=Inner(user="ops"))
    assert isinstance(thing.ratio, float) and isinstance(thing.sizes["bf16"], float)


def test_optional_sections_may_be_empty() -> None:
    thing, problems = build_from(VALID + "inner:\n")
    assert problems == [] and thing is not None and thing.inner is None


def test_missing_keys_say_what_to_add() -> None:
    thing, problems = build_from("flag: true\n")
    assert thing is None
    assert [(p.path, p.line, p.message, p.fix) for p in problems] == [
        ("count", 1, "required key 'count' is missing from one:",
         "add count: 2  (how many (1-10))"),
        ("login", 1, "required key 'login' is missing from one:",
         "add login: {user: ops}  (how to log in)"),
    ]


def test_an_empty_nested_section_lists_its_required_keys() -> None:
    problem = only("count: 3\nlogin:\n")
    assert (problem.path, problem.line) == ("login", 2)
    assert problem.message == "login: is empty"
    assert problem.fix == "add its keys under it: user: ops  (the login user)"


def test_unknown_keys_get_a_did_you_mean() -> None:
    problem = only(VALID + "flg: true\n")
    assert (problem.path, problem.line) == ("flg", 3)
    assert problem.message == "unknown key 'flg' in one:"
    assert problem.fix == "did you mean 'flag'?"


def test_a_misspelt_required_key_is_one_problem_not_two() -> None:
    problem = only("coutn: 4\nlogin: {user: ops}\n")  # not also "count is missing"
    assert (problem.path, problem.line) == ("coutn", 1)
    assert problem.fix == "did you mean 'count'? (it is required)"


def test_did_you_mean_offers_only_keys_not_given() -> None:
    problem = only(VALID + "counts: 4\n")  # count: is there already
    assert problem.fix.startswith("remove it; the keys of one: are count, flag")


def test_unknown_keys_without_a_near_match_list_the_known_ones() -> None:
    problem = only(VALID + "inner: {user: a, colour: red}\n")
    assert problem.path == "inner.colour"
    assert problem.fix == "remove it; the keys of inner: are port, user"


@pytest.mark.parametrize(("line", "message", "fix"), [
    ("count: three", "count must be an integer, not 'three'",
     "set count to how many (1-10), e.g. count: 2"),
    ("count: true", "count must be an integer, not true (true/false)", "set count to"),
    ("count: 2.5", "count must be an integer, not 2.5 (a number)", "set count to"),
    ("count: [1]", "count must be an integer, not a list", "set count to"),
    ("count: 0", "count is 0; it must be at least 1", "set count to how many (1-10)"),
    ("count: 11", "count is 11; it must be at most 10", "e.g. count: 2"),
    ("ratio: 0", "ratio is 0.0; it must be more than 0", "a fraction in (0, 1]"),
    ("ratio: .inf", "ratio is inf; it must be a finite number", "e.g. ratio: 0.9"),
    ("count: 1" + "0" * 30, "count is 1000000000000000000000000000000; no setting is that large",
     "set count to"),
    ("ratio: half", "ratio must be a number, not 'half'", "set ratio to a fraction"),
    ("ratio: 5e-1", "ratio must be a number, not '5e-1'",
     "YAML reads 5e-1 as text; write ratio: 0.5"),
    ("count: 2e0", "count must be an integer, not '2e0'", "YAML reads 2e0 as text; write count: 2"),
    ("count: 2.5e0", "count must be an integer, not '2.5e0'", "set count to"),
    ("label: ABC", "label 'ABC' is not valid here", "set label to lower-case letters"),
    ("label: 8.9", "label must be a string, not 8.9 (a number)", "quote it: label: '8.9'"),
    ("label: no", "label must be a string, not no (true/false)", "quote it: label: 'no'"),
    ("label:", "label must be a string, not nothing (null)", "set label to lower-case"),
    ("mode: fp9", "mode 'fp9' is not one of 'no', 'auto', 'fp8'", "did you mean mode: fp8?"),
    ("mode: off", "mode off (true/false) is not one of 'no', 'auto', 'fp8'",
     "YAML reads an unquoted off as false; quote it: mode: 'off'"),
    ("mode: no", "mode no (true/false) is not one of", "quote it: mode: 'no'"),
    ("mode: zzz", "mode 'zzz' is not one of", "use one of: no, auto, fp8"),
    ("flag: yes please", "flag must be true or false, not 'yes please'", "set flag to"),
    ("tags: a", "tags must be a list of strings, not 'a'", "write it as a list: tags: [a]"),
    ("sizes: [1]", "sizes must be a mapping of names to numbers, not a list", "set sizes to"),
    ("inner: 5", "inner must be a mapping (keys indented under inner:), not 5 (a number)",
     "indented under inner:"),
])
def test_wrong_values_are_explained(line: str, message: str, fix: str) -> None:
    key = line.split(":")[0]
    rest = [kept for kept in VALID.splitlines() if not kept.startswith(key + ":")]
    problem = only("\n".join([*rest, line]) + "\n")
    assert problem.line == len(rest) + 1
    assert problem.path == "" + line.split(":")[0]
    assert problem.message.startswith(message), problem.message
    assert fix in problem.fix, problem.fix


def test_list_items_and_mapping_values_are_located() -> None:
    _, problems = build_from(VALID + "tags:\n  - a\n  - 7\nsizes: {bf16: 2, awq: -1}\n")
    assert [(p.path, p.line, p.message, p.fix) for p in problems] == [
        ("tags[1]", 5, "tags[1] must be a string, not 7 (a number)", "quote it: '7'"),
        ("sizes.awq", 6, "awq is -1.0; it must be more than 0", "set awq to GiB"),
    ]


def test_a_literal_choice_must_match_its_type_too() -> None:
    # False == 0 in Python; neither may pass for the string 'no'
    @dataclass(frozen=True, kw_only=True)
    class Choice:
        policy: Literal["no", "always"]

    doc = read_yaml("policy: false\n", file="t.yaml")
    ctx = Context(file="t.yaml", lines=doc.lines)
    assert build(ctx, "", doc.data, Choice) is None
    assert "quote it: policy: 'false'" in ctx.problems[0].fix


def test_every_problem_in_one_pass() -> None:
    _, problems = build_from("count: 0\nratio: 2\nmode: x\nlogin: {user: 1}\nextra: 1\n")
    assert sorted(p.path for p in problems) == [
        "count", "extra", "login.user", "mode",
        "ratio"]
    assert all(p.fix for p in problems)


def test_messages_stay_short_on_huge_values() -> None:
    huge = "x" * 100_000
    problem = only(VALID + f"mode: {huge}\n")
    assert len(problem.message) < 300
    assert len(show(list(range(100_000)))) < 200
    assert len(show("y" * 10_000)) < 100


def test_describe() -> None:
    assert describe(None) == "nothing (null)"
    assert describe(None, "~") == "~ (null)"
    assert describe(True, "yes") == "yes (true/false)"
    assert describe(8.9) == "8.9 (a number)"
    assert describe("16k") == "'16k'"
    assert describe({"a": 1}) == "a mapping"
    assert describe([1]) == "a list"


def test_spec_and_meta_carry_defaults_and_metadata() -> None:
    f = spec(default=3, ge=1, help="h", example="e")
    assert f.default == 3
    assert dict(f.metadata) == {"help": "h", "example": "e", "ge": 1}
    assert meta(pattern="x") == {"help": "", "example": "", "pattern": "x"}


def test_build_refuses_to_guess_an_ambiguous_union() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Bad:
        x: int | str

    ctx = Context(file="t.yaml", lines=read_yaml("x: 1\n", file="t.yaml").lines)
    with pytest.raises(TypeError, match="unsupported union"):  # a schema bug, not user input
        build(ctx, "", {"x": 1}, Bad)

