"""A corpus case for every cross-field rule of the inventory (vllmfleet.inventory.rules), each
with the field path and the words of its message, and a clean near-miss for each: the value
just inside the rule's boundary, which must not trip it. A rule whose condition is reversed,
dropped or off by one fails here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import REFERENCE
from vllmfleet.errors import InventoryError, Problem
from vllmfleet.inventory.load import parse

TEXT = REFERENCE.read_text(encoding="utf-8")
Edit = tuple[str, str, str]  # (anchor, old, new): replace the first `old` after `anchor`

WM, AR, MO = "\n  wintermute:", "\n  armitage:", "\n  motoko:"
REASONER, BURST, CHAT = ("\n  llama31-8b-wintermute:", "\n  llama31-8b-wintermute-burst:",
                         "\n  qwen2.5-7b-armitage:")


def edited(*edits: Edit) -> str:
    text = TEXT
    for anchor, old, new in edits:
        start = text.index(anchor)
        at = text.index(old, start)
        text = text[:at] + new + text[at + len(old):]
    return text


def problems(text: str) -> list[Problem]:
    try:
        return list(parse(text).warnings)
    except InventoryError as exc:
        return list(exc.problems)


@dataclass(frozen=True)
class Rule:
    id: str
    bad: tuple[Edit, ...]
    path: str
    says: str
    severity: str = "error"
    near_miss: tuple[Edit, ...] = ()  # the clean negative (default: the reference itself)
    fix: str = ""  # words of the fix, when given


RULES = [
    Rule("unknown-host", ((REASONER, "host: wintermute", "host: wintermut"),),
         "aliases.llama31-8b-wintermute.host",
         "host 'wintermut' is not defined under hosts:"),
    Rule("proxy-on-windows", (("\nproxy:", "host: motoko", "host: armitage"),),
         "proxy.host", "the proxy runs under systemd; 'armitage' is a windows host",
         near_miss=(("\nproxy:", "host: motoko", "host: wintermute"),)),
    Rule("wsl-distro", ((WM, "    wsl_distro: Ubuntu-22.04\n", ""),),
         "hosts.wintermute.wsl_distro", "a wsl host needs wsl_distro",
         fix="add wsl_distro: Ubuntu-22.04 (see `wsl -l -q` on the host)"),
    Rule("gpu-missing", ((AR, "    gpu:\n      name: NVIDIA GeForce RTX 4060 Ti 8GB\n"
                              "      vram_gib: 8\n      compute_capability: \"8.9\"\n"
                              "      reserved_gib: 0.5\n", ""),),
         "hosts.armitage.gpu", "a host that runs vLLM needs a gpu: section",
         fix="add gpu: {name: ..., vram_gib: ..., compute_capability: '8.9'}"),
    Rule("image-unpinned", ((AR, "image: vllm/vllm-openai:v0.32.0", "image: vllm/vllm-openai"),),
         "hosts.armitage.vllm.image", "is not pinned to a version",
         near_miss=((AR, "image: vllm/vllm-openai:v0.32.0", "image: vllm/vllm-openai:v0.31.0"),)),
    Rule("image-registry-port-unpinned", ((AR, "image: vllm/vllm-openai:v0.32.0",
                                           "image: localhost:5000/vllm-openai"),),
         "hosts.armitage.vllm.image", "is not pinned to a version",
         fix="name a release tag, e.g. image: vllm/vllm-openai:v0.11.0"),
    Rule("image-latest", ((AR, "image: vllm/vllm-openai:v0.32.0",
                           "image: vllm/vllm-openai:latest"),),
         "hosts.armitage.vllm.image", "is not pinned to a version"),
    Rule("tp-over-gpus", ((AR, "tensor_parallel_size: 1", "tensor_parallel_size: 2"),),
         "hosts.armitage.vllm.tensor_parallel_size",
         "tensor_parallel_size 2 needs that many GPUs; the host has 1",
         near_miss=((AR, "vram_gib: 8\n", "vram_gib: 8\n      count: 2\n"),
                    (AR, "tensor_parallel_size: 1", "tensor_parallel_size: 2"))),
    Rule("context-over-model", ((AR, "max_model_len: 8192", "max_model_len: 32769"),),
         "hosts.armitage.vllm.max_model_len",
         "max_model_len 32769 is above qwen2.5-7b-instruct's max_position_embeddings 32768",
         near_miss=((AR, "max_model_len: 8192", "max_model_len: 32768"),),
         fix="lower max_model_len to at most 32768"),
    Rule("no-weights-for-format", ((AR, "quantization: awq_marlin", "quantization: gptq"),),
         "hosts.armitage.vllm.quantization",
         "models.qwen2.5-7b-instruct.weights_gib has no 'gptq' entry for quantization 'gptq'",
         near_miss=((AR, "quantization: awq_marlin", "quantization: awq"),)),
    Rule("reserved-all", ((AR, "reserved_gib: 0.5", "reserved_gib: 8"),),
         "hosts.armitage.gpu.reserved_gib", "reserved_gib 8.0 leaves nothing of 8.0 GiB",
         fix="set it to what nvidia-smi shows in use before vLLM starts",
         near_miss=((AR, "reserved_gib: 0.5", "reserved_gib: 0.75"),)),
    Rule("quant-capability", ((AR, "compute_capability: \"8.9\"", "compute_capability: \"7.5\""),),
         "hosts.armitage.vllm.quantization",
         "quantization awq_marlin needs compute capability 8.0; NVIDIA GeForce RTX 4060 Ti 8GB "
         "has 7.5",
         near_miss=((AR, "compute_capability: \"8.9\"", "compute_capability: \"8.0\""),
                    (AR, "kv_cache_dtype: fp8", "kv_cache_dtype: fp8_e5m2"))),
    Rule("fp8-kv-capability", ((AR, "compute_capability: \"8.9\"",
                                "compute_capability: \"8.6\""),),
         "hosts.armitage.vllm.kv_cache_dtype", "kv_cache_dtype fp8 (fp8_e4m3) needs compute "
         "capability 8.9", severity="warning",
         near_miss=((AR, "compute_capability: \"8.9\"", "compute_capability: \"8.6\""),
                    (AR, "kv_cache_dtype: fp8", "kv_cache_dtype: fp8_e5m2"))),
    Rule("name-with-space", ((REASONER, "also: [local/reasoner]", "also: ['local reasoner']"),),
         "aliases.llama31-8b-wintermute.also[0]", "is empty or has spaces"),
    Rule("name-twice", ((CHAT, "also: [local/chat]", "also: [local/reasoner]"),),
         "aliases.qwen2.5-7b-armitage.also[0]", "model name 'local/reasoner' is used twice"),
    Rule("vllm-port-twice", ((AR, "address: armitage.lan", "address: wintermute.lan"),),
         "hosts.wintermute.vllm.port", "wintermute.lan:8000 is used by more than one vLLM host",
         near_miss=((AR, "address: armitage.lan", "address: wintermute.lan"),
                    (AR, "port: 8000", "port: 8001"))),
    Rule("proxy-port-is-vllm", (("\nproxy:", "host: motoko\n  port: 4000",
                                 "host: wintermute\n  port: 8000"),),
         "proxy.port", "port 8000 on wintermute.lan is also a vLLM port",
         near_miss=(("\nproxy:", "host: motoko\n  port: 4000", "host: wintermute\n  port: 8001"),)),
    Rule("alias-on-proxy-host", ((CHAT, "host: armitage", "host: motoko"),),
         "aliases.qwen2.5-7b-armitage.host", "host 'motoko' does not run vLLM",
         fix="point the alias at a host with a vllm: section: armitage, wintermute"),
    Rule("input-plus-output", ((CHAT, "max_input_tokens: 7000", "max_input_tokens: 7425"),),
         "aliases.qwen2.5-7b-armitage.max_input_tokens",
         "max_input_tokens 7425 + max_output_tokens 768 = 8193 exceeds armitage's max_model_len "
         "8192", near_miss=((CHAT, "max_input_tokens: 7000", "max_input_tokens: 7424"),),
         fix="lower max_input_tokens to at most 7424, or raise hosts.armitage.vllm.max_model_len"),
    Rule("output-alone-over-context",
         ((CHAT, "max_output_tokens: 768", "max_output_tokens: 8192"),),
         "aliases.qwen2.5-7b-armitage.max_input_tokens", "= 15192 exceeds armitage's max_model_len",
         fix="lower max_output_tokens below 8192, or raise"),
    Rule("input-share-low", ((CHAT, "max_input_tokens: 7000", "max_input_tokens: 6500"),),
         "aliases.qwen2.5-7b-armitage.max_input_tokens",
         "max_input_tokens 6500 is 79% of armitage's max_model_len 8192", severity="warning",
         near_miss=((CHAT, "max_input_tokens: 7000", "max_input_tokens: 6554"),),
         fix="use 6963-7372 (85-90 %) unless you mean it"),
    Rule("input-share-high", ((CHAT, "max_input_tokens: 7000", "max_input_tokens: 7783"),
                              (CHAT, "max_output_tokens: 768", "max_output_tokens: 1")),
         "aliases.qwen2.5-7b-armitage.max_input_tokens", "is 95% of", severity="warning",
         near_miss=((CHAT, "max_input_tokens: 7000", "max_input_tokens: 7782"),
                    (CHAT, "max_output_tokens: 768", "max_output_tokens: 1"))),
    Rule("concurrency-over-seqs", ((CHAT, "concurrency: 1", "concurrency: 2"),),
         "aliases.qwen2.5-7b-armitage.concurrency",
         "concurrency 2 is above armitage's max_num_seqs 1", severity="warning"),
    Rule("profile-of-itself", ((BURST, "profile_of: llama31-8b-wintermute",
                                "profile_of: llama31-8b-wintermute-burst"),),
         "aliases.llama31-8b-wintermute-burst.profile_of",
         "alias 'llama31-8b-wintermute-burst' is a profile of itself"),
    Rule("profile-other-host", ((BURST, "host: wintermute", "host: armitage"),),
         "aliases.llama31-8b-wintermute-burst.profile_of",
         "a profile must use its base's host ('wintermute'), not 'armitage'"),
    Rule("profile-weaker", ((BURST, "rpm: 60", "rpm: 59"),),
         "aliases.llama31-8b-wintermute-burst.profile_of",
         "profile 'llama31-8b-wintermute-burst' is weaker than its base "
         "'llama31-8b-wintermute': rpm 59 < 60", severity="warning"),
]


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_each_rule_names_its_field_and_says_why(rule: Rule) -> None:
    found = problems(edited(*rule.bad))
    hits = [p for p in found if p.path == rule.path and rule.says in p.message]
    assert hits, "\n".join(str(p) for p in found)
    assert {p.severity for p in hits} == {rule.severity}
    assert all(p.fix for p in hits)
    assert all(rule.fix in p.fix for p in hits), [p.fix for p in hits]


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_each_rule_keeps_quiet_just_inside_its_boundary(rule: Rule) -> None:
    found = problems(edited(*rule.near_miss))
    assert not [p for p in found if p.path == rule.path], "\n".join(map(str, found))


def test_the_reference_trips_no_rule() -> None:
    assert problems(TEXT) == []
