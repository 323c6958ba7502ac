"""The inventory as a user meets it: the shipped fleet loads clean; every mistake is explained.

The corpus below breaks ``configs/fleet.yaml`` one way at a time (text patches, so line
numbers are real) and checks that the report names the field path, the bad value, the line
of the offending key and the fix. The garbage and mutation tests check that nothing a
user can write makes ``parse`` raise anything but :class:`InventoryError`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REFERENCE
from vllmfleet.errors import InventoryError, Problem
from vllmfleet.inventory import Inventory, load, parse

TEXT = REFERENCE.read_text(encoding="utf-8")
FILE = "corpus.yaml"


def _find(text: str, needle: str, after: str) -> int:
    start = text.index(after) if after else 0
    return text.index(needle, start)


def patch(text: str, after: str, old: str, new: str) -> str:
    """Replace the first ``old`` that comes after ``after``."""
    at = _find(text, old, after)
    return text[:at] + new + text[at + len(old):]


def line_of(text: str, after: str, needle: str) -> int:
    return text.count("\n", 0, _find(text, needle, after)) + 1


def problems_of(text: str) -> list[Problem]:
    """Every problem ``parse`` reports: the error's list, or a usable inventory's warnings."""
    try:
        return parse(text, file=FILE).warnings
    except InventoryError as exc:
        return exc.problems


# -- the shipped inventory --------------------------------------------------------------


def test_shipped_fleet_loads_without_errors_or_warnings() -> None:
    inv = load(REFERENCE)
    assert isinstance(inv, Inventory)
    assert inv.warnings == []
    assert sorted(inv.vllm_hosts) == ["armitage", "wintermute"]
    assert inv.proxy.host == "motoko"
    assert inv.aliases["llama31-8b-wintermute"].also == ["local/reasoner"]
    assert inv.aliases["llama31-8b-wintermute-burst"].profile_of == "llama31-8b-wintermute"
    assert inv.models["qwen2.5-7b-instruct"].weights_gib == {"bf16": 14.19, "awq": 5.20}


@pytest.mark.parametrize("variant", ["crlf", "bom", "anchors"])
def test_equivalent_spellings_of_the_shipped_fleet_load_the_same(variant: str) -> None:
    text = {
        "crlf": TEXT.replace("\n", "\r\n"),
        "bom": "\ufeff" + TEXT,
        # a shared ssh block through an anchor and a merge key
        "anchors": patch(patch(TEXT, "wintermute:", "ssh: {user: ops, port: 22}",
                               "ssh: &ssh {user: ops, port: 22}"),
                         "armitage:", "ssh: {user: ops, port: 22}", "ssh: {<<: *ssh}"),
    }[variant]
    inv = parse(text, file=FILE)
    assert inv.warnings == []
    assert inv.hosts == load(REFERENCE).hosts


# -- the corpus of broken inventories ----------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    edits: tuple[tuple[str, str, str], ...]  # (after, old, new), applied in order
    path: str  # the field path the problem must name
    at: tuple[str, str]  # (after, needle): the problem's line is the line of needle
    says: tuple[str, ...]  # in the message
    fix: tuple[str, ...]  # in the fix
    severity: str = "error"

    def text(self) -> str:
        text = TEXT
        for after, old, new in self.edits:
            text = patch(text, after, old, new)
        return text


W, A = "  wintermute:", "  armitage:"  # the host entries
WA, QA = "  llama31-8b-wintermute:", "  qwen2.5-7b-armitage:"  # the alias entries
BURST = "  llama31-8b-wintermute-burst:"
PROXY_BLOCK = TEXT[TEXT.index("proxy:\n"):TEXT.index("aliases:\n")]

CORPUS = [
    Case("unknown-key-typo", ((A, "max_num_seqs: 1", "max_num_seq: 1"),),
         "hosts.armitage.vllm.max_num_seq", (A, "max_num_seq: 1"),
         ("unknown key 'max_num_seq'", "vllm:"),
         ("did you mean 'max_num_seqs'? (it is required)",)),
    Case("unknown-key-no-match", (("  motoko:", "    platform: linux\n",
                                   "    platform: linux\n    colour: blue\n"),),
         "hosts.motoko.colour", ("  motoko:", "colour: blue"),
         ("unknown key 'colour'",), ("remove it", "address", "platform", "vllm")),
    Case("unknown-top-level-key", (("", "\naliases:\n", "\nprxy: {}\naliases:\n"),),
         "prxy", ("", "prxy: {}"), ("unknown top-level key 'prxy'",), ("did you mean 'proxy'?",)),
    Case("missing-required-key", ((A, "      max_num_seqs: 1\n", ""),),
         "hosts.armitage.vllm.max_num_seqs", (A, "vllm:"),
         ("required key 'max_num_seqs' is missing",), ("add max_num_seqs: 2",)),
    Case("missing-required-alias-limit", ((QA, "    rpm: 40\n", ""),),
         "aliases.qwen2.5-7b-armitage.rpm", ("aliases:", QA),
         ("required key 'rpm' is missing from qwen2.5-7b-armitage:",),
         ("add rpm: 60", "requests per minute")),
    Case("empty-section", (("  motoko:", "ssh: {user: ops, port: 22}", "ssh:"),),
         "hosts.motoko.ssh", ("  motoko:", "ssh:"), ("ssh: is empty",), ("user: ops",)),
    Case("wrong-type-int", ((W, "max_model_len: 16384", "max_model_len: 16k"),),
         "hosts.wintermute.vllm.max_model_len", (W, "max_model_len: 16k"),
         ("max_model_len must be an integer", "'16k'"),
         ("set max_model_len to", "e.g. max_model_len: 16384")),
    Case("float-out-of-range",
         ((W, "gpu_memory_utilization: 0.92", "gpu_memory_utilization: 1.5"),),
         "hosts.wintermute.vllm.gpu_memory_utilization", (W, "gpu_memory_utilization: 1.5"),
         ("1.5", "at most 1"), ("a fraction in (0, 1]",)),
    Case("not-a-finite-number", ((W, "vram_gib: 12", "vram_gib: .nan"),),
         "hosts.wintermute.gpu.vram_gib", (W, "vram_gib: .nan"),
         ("vram_gib is nan", "finite"), ("set vram_gib to", "vram_gib: 12")),
    Case("port-out-of-range", ((W, "ssh: {user: ops, port: 22}", "ssh: {user: ops, port: 70000}"),),
         "hosts.wintermute.ssh.port", (W, "ssh: {user: ops, port: 70000}"),
         ("port is 70000", "at most 65535"), ("a TCP port between 1 and 65535",)),
    Case("choice-typo", ((W, "kv_cache_dtype: fp8", "kv_cache_dtype: fp9"),),
         "hosts.wintermute.vllm.kv_cache_dtype", (W, "kv_cache_dtype: fp9"),
         ("'fp9'", "'fp8_e5m2'"), ("did you mean kv_cache_dtype: fp8?",)),
    Case("yaml-reads-no-as-false", ((W, "      tensor_parallel_size: 1\n",
                                     "      tensor_parallel_size: 1\n      restart_policy: no\n"),),
         "hosts.wintermute.vllm.restart_policy", (W, "restart_policy: no"),
         ("restart_policy no (true/false)",), ("quote it: restart_policy: 'no'",)),
    Case("unquoted-compute-capability",
         ((W, 'compute_capability: "8.9"', "compute_capability: 8.9"),),
         "hosts.wintermute.gpu.compute_capability", (W, "compute_capability: 8.9"),
         ("must be a string", "8.9 (a number)"), ("quote it: compute_capability: '8.9'",)),
    Case("also-as-a-string", ((QA, "also: [local/chat]", "also: local/chat"),),
         "aliases.qwen2.5-7b-armitage.also", (QA, "also: local/chat"),
         ("also must be a list of strings", "'local/chat'"),
         ("write it as a list: also: [local/chat]",)),
    Case("duplicate-key", ((W, "      max_num_seqs: 2\n",
                            "      max_num_seqs: 2\n      max_num_seqs: 4\n"),),
         "hosts.wintermute.vllm.max_num_seqs", (W, "max_num_seqs: 4"),
         ("'max_num_seqs' is given twice", "lines 24 and 25", "only the last"),
         ("remove one of them",)),
    Case("non-string-key", (("  llama-3.1-8b-instruct:", "weights_gib: {bf16: 14.99, awq: 5.37}",
                             "weights_gib: {bf16: 14.99, awq: 5.37, no: 2.0}"),),
         "models.llama-3.1-8b-instruct.weights_gib.no", ("  llama-3.1-8b-instruct:", "weights_gib"),
         ("key 'no' is read by YAML as true/false",), ("quote it: 'no':",)),
    Case("alias-to-missing-host", ((QA, "host: armitage", "host: armitag"),),
         "aliases.qwen2.5-7b-armitage.host", (QA, "host: armitag"),
         ("host 'armitag' is not defined under hosts:",), ("did you mean 'armitage'?",)),
    Case("proxy-to-missing-host", (("proxy:", "host: motoko", "host: motok0"),),
         "proxy.host", ("proxy:", "host: motok0"),
         ("host 'motok0' is not defined under hosts:",), ("did you mean 'motoko'?",)),
    Case("no-proxy-section", (("", PROXY_BLOCK, ""),),
         "proxy", ("", "hosts:"), ("no proxy: section",), ("add proxy: {host:", "motoko")),
    Case("vllm-to-missing-model",
         ((W, "model: llama-3.1-8b-instruct", "model: llama-3.1-8b-instuct"),),
         "hosts.wintermute.vllm.model", (W, "model: llama-3.1-8b-instuct"),
         ("model 'llama-3.1-8b-instuct' is not defined under models:",),
         ("did you mean 'llama-3.1-8b-instruct'?",)),
    Case("profile-of-missing-alias", ((BURST, "profile_of: llama31-8b-wintermute",
                                       "profile_of: llama31-8b-wintermut"),),
         "aliases.llama31-8b-wintermute-burst.profile_of", (BURST, "profile_of:"),
         ("profile_of 'llama31-8b-wintermut' is not defined under aliases:",),
         ("did you mean 'llama31-8b-wintermute'?",)),
    Case("also-name-collides", ((QA, "also: [local/chat]", "also: [local/reasoner]"),),
         "aliases.qwen2.5-7b-armitage.also[0]", (QA, "also: [local/reasoner]"),
         ("'local/reasoner' is used twice", "aliases.llama31-8b-wintermute.also[0]"),
         ("rename one", "must be unique")),
    Case("input-plus-output-over-context",
         ((QA, "max_input_tokens: 7000", "max_input_tokens: 7600"),),
         "aliases.qwen2.5-7b-armitage.max_input_tokens", (QA, "max_input_tokens: 7600"),
         ("7600", "768", "= 8368", "max_model_len 8192"),
         ("lower max_input_tokens to at most 7424",)),
    Case("input-share-low", ((WA, "max_input_tokens: 14000", "max_input_tokens: 10000"),),
         "aliases.llama31-8b-wintermute.max_input_tokens", (WA, "max_input_tokens: 10000"),
         ("10000 is 61%", "16384", "80-95 %"), ("13926-14745",), severity="warning"),
    Case("burst-weaker-than-base", ((BURST, "tpm: 140000", "tpm: 100000"),),
         "aliases.llama31-8b-wintermute-burst.profile_of", (BURST, "profile_of:"),
         ("weaker than its base 'llama31-8b-wintermute'", "tpm 100000 < 120000"),
         ("raise those limits",), severity="warning"),
    Case("context-above-model", ((A, "max_model_len: 8192", "max_model_len: 40960"),),
         "hosts.armitage.vllm.max_model_len", (A, "max_model_len: 40960"),
         ("40960", "max_position_embeddings 32768"), ("at most 32768",)),
    Case("fp8-kv-on-ampere", ((A, 'compute_capability: "8.9"', 'compute_capability: "8.6"'),),
         "hosts.armitage.vllm.kv_cache_dtype", (A, "kv_cache_dtype: fp8"),
         ("kv_cache_dtype fp8", "8.9", "has 8.6"), ("kv_cache_dtype: fp8_e5m2",),
         severity="warning"),
    Case("awq-marlin-on-turing", ((A, 'compute_capability: "8.9"', 'compute_capability: "7.5"'),),
         "hosts.armitage.vllm.quantization", (A, "quantization: awq_marlin"),
         ("awq_marlin needs compute capability 8.0", "has 7.5"), ("use quantization: awq",)),
    Case("unpinned-image", ((W, "vllm/vllm-openai:v0.32.0", "vllm/vllm-openai:latest"),),
         "hosts.wintermute.vllm.image", (W, "image:"),
         ("'vllm/vllm-openai:latest' is not pinned",), ("release tag",)),
    Case("proxy-on-windows", (("proxy:", "host: motoko", "host: armitage"),),
         "proxy.host", ("proxy:", "host: armitage"), ("windows host",), ("linux",)),
    Case("wsl-without-distro", ((W, "    wsl_distro: Ubuntu-22.04\n", ""),),
         "hosts.wintermute.wsl_distro", (W, W.strip()), ("needs wsl_distro",),
         ("add wsl_distro:",)),
    Case("host-name-with-space", (("", "  motoko:", "  'moto ko':"),),
         "hosts.moto ko", ("", "'moto ko':"), ("host name 'moto ko'",), ("letters, digits",)),
]


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 15
    assert len({c.id for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_broken_inventory_is_explained(case: Case) -> None:
    text = case.text()
    assert text != TEXT
    if case.severity == "error":
        with pytest.raises(InventoryError) as info:
            parse(text, file=FILE)
        problems = info.value.problems
        assert case.path in str(info.value)  # the exception's own message lists it too
    else:
        problems = parse(text, file=FILE).warnings  # a warning alone does not fail the load
    found = [p for p in problems if p.path == case.path and p.severity == case.severity]
    assert found, f"no {case.severity} at {case.path}; got:\n" + "\n".join(map(str, problems))
    problem = found[0]
    assert problem.file == FILE
    assert problem.line == line_of(text, *case.at), str(problem)
    for words in case.says:
        assert words in problem.message, str(problem)
    for words in case.fix:
        assert words in problem.fix, str(problem)


def test_structural_errors_still_report_dangling_references() -> None:
    """A type error stops the typed rules; a name that points nowhere is reported anyway."""
    text = patch(TEXT, W, "max_model_len: 16384", "max_model_len: lots")
    text = patch(text, QA, "host: armitage", "host: armitag")
    with pytest.raises(InventoryError) as info:
        parse(text, file=FILE)
    by_path = {p.path: p for p in info.value.problems}
    assert "must be an integer" in by_path["hosts.wintermute.vllm.max_model_len"].message
    assert by_path["aliases.qwen2.5-7b-armitage.host"].fix == "did you mean 'armitage'?"


def test_every_error_is_reported_at_once() -> None:
    text = patch(TEXT, W, "max_num_seqs: 2", "max_num_seqs: 0")
    text = patch(text, A, "port: 8000", "port: http")
    text = patch(text, QA, "tpm: 80000", "tpm: -5")
    with pytest.raises(InventoryError) as info:
        parse(text, file=FILE)
    assert {p.path for p in info.value.problems} == {
        "hosts.wintermute.vllm.max_num_seqs", "hosts.armitage.vllm.port",
        "aliases.qwen2.5-7b-armitage.tpm"}
    assert str(info.value).startswith("3 error(s) in the inventory")


# -- garbage: only ever InventoryError --------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True))
GARBAGE = {
    "empty": "",
    "blank": "  \n\n",
    "only-a-comment": "# nothing here\n",
    "a-list": "- hosts\n- proxy\n",
    "a-number": "42\n",
    "plain-text": "this is not an inventory\n",
    "binary": "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "control-character": "hosts:\n  a: \x07\n",
    "tabs": "hosts:\n\tmotoko:\n\t\taddress: x\n",
    "unclosed-flow": "hosts: {motoko: [1, 2\n",
    "deep-nesting": "[" * 600,
    "recursive-anchor": "hosts: &h {motoko: *h}\nproxy: {host: motoko}\n",
    "billion-laughs": LAUGHS + "hosts: {motoko: {address: *i}}\n",
    "undefined-alias": "hosts: *nowhere\n",
    "bad-merge": "hosts:\n  <<: 5\n",
    "two-documents": "hosts: {}\n---\nproxy: {}\n",
    "python-tag": "hosts: !!python/object/apply:os.system [echo hi]\n",
    "custom-tag": "hosts: !Ref other\n",
    "bad-date": "hosts: 2024-13-45\n",
    "bad-date-key": "2024-13-45: x\n",
    "bad-int-tag": "hosts: !!int twelve\n",
    "huge-int": "proxy: {port: " + "9" * 5000 + "}\n",
    "huge-context": TEXT.replace("max_model_len: 16384", "max_model_len: 1" + "0" * 400),
    "huge-float": TEXT.replace("awq: 5.37", "awq: 1.0e+308"),
    "complex-key": "? [a, b]\n: c\n",
    "null-sections": "hosts:\nproxy:\naliases:\nmodels:\n",
    "numbers-as-sections": "hosts: 5\nproxy: 5\naliases: 5\nmodels: 5\n",
    "lists-as-entries": "hosts: {motoko: [1]}\nproxy: {host: [motoko]}\naliases: [a]\n"
                        "models: {m: {weights_gib: [1]}}\n",
    "number-key": "8000: x\n",
    "null-key": "~: x\nhosts: {null: {}}\n",
    "bool-keys": "hosts: {yes: {}, on: {}}\n",
    "duplicate-top-keys": "hosts: {}\nhosts: {}\n",
    "recursive-ssh": "hosts: {motoko: {address: x, platform: linux, ssh: &s {user: *s}}}\n",
    "empty-key": "hosts: {'': {}}\n",
    "shipped-with-tab-inside": TEXT.replace("    address: motoko.lan", "\taddress: motoko.lan"),
    "shipped-truncated": TEXT[: len(TEXT) // 2],
    "shipped-twice": TEXT + TEXT,
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_is_an_inventory_error_not_a_traceback(name: str) -> None:
    with pytest.raises(InventoryError) as info:
        parse(GARBAGE[name], file=FILE)
    assert info.value.problems
    for problem in info.value.problems:
        assert problem.file == FILE
        assert problem.message and len(problem.message) < 400  # no value dumped whole
        if problem.severity == "error":
            assert problem.fix and len(problem.fix) < 400, str(problem)
    # each thing is said once
    said = [(p.path, p.message) for p in info.value.problems]
    assert len(said) == len(set(said))


@pytest.mark.parametrize(("name", "line", "words", "fix"), [
    ("tabs", 2, "'\\t'", "spaces, not tabs"),
    ("binary", 1, "control character #x0089", "UTF-8 text"),
    ("control-character", 2, "control character #x0007", "stray character"),
    ("deep-nesting", None, "nested too deeply", "runaway"),
    ("undefined-alias", 1, "undefined alias 'nowhere'", "&name"),
    ("two-documents", 2, "single document", "extra ---"),
    ("python-tag", 1, "'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
     "remove the tag"),
    ("bad-date", 1, "'2024-13-45' looks like a date", "quote it"),
    ("empty", 1, "the inventory is empty", "configs/fleet.yaml"),
    ("a-list", 1, "must be a mapping with the keys hosts, proxy, aliases, models; this file "
     "holds a list", "configs/fleet.yaml"),
    ("duplicate-top-keys", 2, "'hosts' is given twice, on lines 1 and 2", "remove one"),
    ("number-key", 1, "key '8000' is read by YAML as a number", "quote it: '8000':"),
])
def test_garbage_messages(name: str, line: int | None, words: str, fix: str) -> None:
    with pytest.raises(InventoryError) as info:
        parse(GARBAGE[name], file=FILE)
    first = info.value.problems[0]
    assert first.line == line
    assert words in first.message
    assert fix in first.fix


def test_load_reports_unreadable_files(tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing.yaml": "inventory file not found",
        tmp_path: "a folder, not an inventory file",
    }
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("hosts: {caf\xe9: {}}\n".encode("latin-1"))
    cases[latin1] = "not UTF-8 text"
    for path, words in cases.items():
        with pytest.raises(InventoryError) as info:
            load(path)
        (problem,) = info.value.problems
        assert problem.file == str(path)
        assert words in problem.message
        assert problem.fix


# -- mutations of the shipped file ------------------------------------------------------

def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path in the data, parents before children."""
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _mutate(path: tuple[Any, ...], value: Any = None, *, delete: bool = False) -> str:
    data = copy.deepcopy(SHIPPED_DATA)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False)


def _assert_explained(problems: list[Problem], dotted: str) -> None:
    """Each error is located and has a fix; one of them is about the mutated entry."""
    errors = [p for p in problems if p.severity == "error"]
    assert errors
    for problem in errors:
        assert problem.path and problem.line is not None and problem.fix, str(problem)
    entry = ".".join(dotted.split(".")[:2])  # e.g. hosts.wintermute, proxy.host
    leaf = dotted.rsplit(".", 1)[-1].split("[")[0]
    assert any(p.path.startswith(entry) or leaf in p.message for p in errors), \
        dotted + "\n" + "\n".join(map(str, errors))


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SHIPPED_DATA = yaml.safe_load(TEXT)
ALL_PATHS = _paths(SHIPPED_DATA)
# Each scalar gets the next of these whose type differs from its own (parsing is ~20 ms,
# so one wrong value per scalar, rotating, rather than all of them for every scalar).
WRONG_VALUES: list[Any] = [None, "x y", -1, 0.5, True, [1], {"k": 1}, "", 10**9]


def test_deleting_any_key_is_either_fine_or_explained() -> None:
    failed = 0
    for path in ALL_PATHS:
        try:
            parse(_mutate(path, delete=True), file=FILE)
        except InventoryError as exc:
            failed += 1
            _assert_explained(exc.problems, _dotted(path))
    assert failed > len(ALL_PATHS) // 2  # most keys are required: the loop did test something


def test_any_wrong_value_is_either_fine_or_explained() -> None:
    scalars = [p for p in ALL_PATHS if not isinstance(_get(SHIPPED_DATA, p), dict | list)]
    failed = 0
    for i, path in enumerate(scalars):
        old = _get(SHIPPED_DATA, path)
        value = next(v for v in WRONG_VALUES[i % len(WRONG_VALUES):] + WRONG_VALUES
                     if type(v) is not type(old))
        try:
            parse(_mutate(path, value), file=FILE)
        except InventoryError as exc:
            failed += 1
            _assert_explained(exc.problems, _dotted(path))
    assert failed > len(scalars) // 2


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data
