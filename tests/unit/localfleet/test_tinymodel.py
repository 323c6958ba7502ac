"""The generated tiny Llama: deterministic, well-formed, and what the CPU inventory says it is."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from tests.conftest import ROOT
from vllmfleet.client.prompts import PAD, WORDS
from vllmfleet.inventory import load
from vllmfleet.localfleet import tinymodel


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tinymodel.make(tmp_path_factory.mktemp("cache"))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_it_lands_in_a_hub_cache_layout_that_names_its_revision(model: Path) -> None:
    repo = model.parent.parent
    assert repo.name == "models--vllmfleet--tiny-llama"
    assert (repo / "refs" / "main").read_text() == model.name == tinymodel.revision()
    assert {"config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json"} <= set(_files(model))


def test_two_runs_write_the_same_bytes(model: Path, tmp_path: Path) -> None:
    again = tinymodel.make(tmp_path, force=True)
    assert _files(again) == _files(model)


def test_a_complete_model_is_reused_and_an_incomplete_one_is_made_again(tmp_path: Path) -> None:
    first = tinymodel.make(tmp_path)
    weights = first / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert tinymodel.make(tmp_path) == first and weights.stat().st_mtime_ns == stamp
    (first / ".complete").unlink()
    weights.write_bytes(b"truncated")
    tinymodel.make(tmp_path)
    assert weights.read_bytes() != b"truncated" and (first / ".complete").is_file()


def test_the_safetensors_file_holds_every_llama_tensor_in_bf16(model: Path) -> None:
    data = (model / "model.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    assert (8 + size) % 8 == 0
    config = json.loads((model / "config.json").read_text())
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert len(tensors) == 3 + 9 * config["num_hidden_layers"]
    end = 0
    for name, spec in tensors.items():
        count = 1
        for dim in spec["shape"]:
            count *= dim
        assert spec["dtype"] == "BF16", name
        assert spec["data_offsets"] == [end, end + 2 * count], name
        end += 2 * count
    assert len(data) == 8 + size + end
    assert tensors["model.embed_tokens.weight"]["shape"] == [config["vocab_size"], 256]
    assert tensors["model.layers.0.self_attn.k_proj.weight"]["shape"] == [2 * 64, 256]


def test_the_filler_words_are_one_token_each_and_a_capitalised_word_is_not(model: Path) -> None:
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    for word in (*WORDS, PAD):
        assert len(tok.encode(" " + word, add_special_tokens=False).ids) == 1, word
    assert len(tok.encode("Mountain", add_special_tokens=False).ids) > 1
    assert tok.encode("fleet").tokens[0] == "<s>"  # BOS on plain prompts


def test_the_chat_template_and_special_tokens_agree_with_the_config(model: Path) -> None:
    config = json.loads((model / "config.json").read_text())
    tok_config = json.loads((model / "tokenizer_config.json").read_text())
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    assert "add_generation_prompt" in tok_config["chat_template"]
    assert config["bos_token_id"] == tok.token_to_id(tok_config["bos_token"])
    assert config["eos_token_id"] == tok.token_to_id(tok_config["eos_token"])
    assert config["vocab_size"] == tok.get_vocab_size(with_added_tokens=True)


def test_the_cpu_inventory_describes_the_generated_model(model: Path) -> None:
    inventory = load(ROOT / "configs" / "fleet-vllm-cpu.yaml")
    config = json.loads((model / "config.json").read_text())
    entry = inventory.models["tiny-llama"]
    assert entry.hf_id == tinymodel.REPO
    assert (entry.layers, entry.kv_heads, entry.head_dim, entry.hidden_size,
            entry.intermediate_size, entry.vocab_size, entry.max_position_embeddings) == (
        config["num_hidden_layers"], config["num_key_value_heads"], config["head_dim"],
        config["hidden_size"], config["intermediate_size"], config["vocab_size"],
        config["max_position_embeddings"])
    assert all(h.vllm.weights == tinymodel.REPO
               for h in inventory.vllm_hosts.values() if h.vllm is not None)
