"""A tiny random-weight Llama that a real vLLM can serve, generated here, nothing downloaded.

``python -m vllmfleet.localfleet.tinymodel [--cache DIR]`` (or ``scripts/make-tiny-model``)
writes, deterministically, into a Hugging Face hub cache layout::

    DIR/hub/models--vllmfleet--tiny-llama/refs/main            -> REVISION
    DIR/hub/models--vllmfleet--tiny-llama/snapshots/REVISION/  config.json,
        model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json

so that vLLM started with ``HF_HUB_CACHE=DIR/hub HF_HUB_OFFLINE=1`` loads it by the name an
inventory gives (``weights: vllmfleet/tiny-llama``): the engine runs with exactly the flags
``inv render`` produces, no path substituted. The model: LlamaForCausalLM, hidden 256, 2 layers,
4 heads / 2 KV heads, head_dim 64, bfloat16 weights uniform in ±0.04 (a seeded PRNG), written
in the safetensors format by hand (8-byte header length, JSON header, raw little-endian data).
The tokenizer: byte-level BPE trained in-process with ``tokenizers`` on a fixed corpus in
which the prompt builder's filler words are frequent (one token each, as cl100k counts them,
so LiteLLM's count and the engine's agree on filler), a ``<s>`` BOS and a chat template.

Only the standard library and ``tokenizers`` (a LiteLLM dependency) are needed. The revision
is a digest of the generator's parameters and output, so a changed generator never reuses a
stale folder; an existing complete folder is reused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import struct
import sys
import tempfile
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

REPO = "vllmfleet/tiny-llama"
SEED = 20261201
HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTERMEDIATE = 256, 2, 4, 2, 64, 512
VOCAB = 2048
MAX_POSITIONS = 32768
SPECIAL = ("<unk>", "<s>", "</s>", "<|start|>", "<|end|>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|end|>\n{% endfor %}{% if add_generation_prompt %}<|start|>assistant\n{% endif %}")
# Generator parameters that change the output; part of the revision.
_PARAMS = {"seed": SEED, "hidden": HIDDEN, "layers": LAYERS, "heads": HEADS,
           "kv_heads": KV_HEADS, "head_dim": HEAD_DIM, "intermediate": INTERMEDIATE,
           "vocab": VOCAB, "max_positions": MAX_POSITIONS, "template": CHAT_TEMPLATE,
           "format": 1}
_DONE = ".complete"

_PROSE = """\
The fleet runs a small model on each host. A proxy in front of the hosts gives clients
stable names and enforces limits on the input, the output, the rate and the number of
requests that may wait. When a request is too long, the server says so and names the limit.
The river runs past the stone house, and the water is green in the morning light. A letter
lies on the table; music plays while we travel. The number on the yellow paper is simple.
In winter and in summer the street is full; a friend brings an orange and a silver camera.
The forest, the island and the bridge are on the map. The doctor checks the engine. A flower
grows in a circle by the mountain, and the planet sends a signal to the market window.
"""


def _corpus() -> list[str]:
    """Fixed training text: prose, plus the prompt builder's filler words in many orders.

    The filler words become one token each after a space (as cl100k counts them); written
    capitalised, as a prompt's first word is, they cost several (so the prompt builder meets
    a tokenizer whose words are not all one token).
    """
    from vllmfleet.client.prompts import PAD, WORDS  # plain data; no I/O at import

    rng = random.Random(SEED)
    lines = _PROSE.splitlines()
    for _ in range(400):
        words = rng.sample(WORDS, 12)
        lines.append(" ".join(words) + f" {PAD} {PAD}.")
        lines.append("hello hello world, hello.")  # the differential test's filler
    return lines


def _tokenizer() -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=list(SPECIAL),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return tok


def _tensors(vocab: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
            p + "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
            p + "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
            p + "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
            p + "input_layernorm.weight": (HIDDEN,),
            p + "post_attention_layernorm.weight": (HIDDEN,),
        })
    shapes["model.norm.weight"] = (HIDDEN,)
    shapes["lm_head.weight"] = (vocab, HIDDEN)
    return shapes


def _bf16(values: array[float]) -> bytes:
    """bfloat16 little-endian: the upper half of each float32 (truncated, not rounded)."""
    bits = array("I", values.tobytes())
    if sys.byteorder != "little":
        bits.byteswap()
    half = array("H", (b >> 16 for b in bits))
    if sys.byteorder != "little":
        half.byteswap()
    return half.tobytes()


def _safetensors(shapes: dict[str, tuple[int, ...]]) -> bytes:
    """bfloat16 tensors in the safetensors format; norms are ones, the rest seeded noise.

    bfloat16, because vLLM's CPU backend runs a float32 checkpoint in bfloat16 anyway (and
    warns for every tensor it converts; vLLM 0.32.0, seen in its start-up log).
    """
    rng = random.Random(SEED)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    chunks: list[bytes] = []
    offset = 0
    for name, shape in shapes.items():
        count = 1
        for dim in shape:
            count *= dim
        if name.endswith("norm.weight"):
            values = array("f", [1.0]) * count
        else:
            values = array("f", (rng.uniform(-0.04, 0.04) for _ in range(count)))
        data = _bf16(values)
        header[name] = {"dtype": "BF16", "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the format asks for an 8-byte aligned data start
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def _files() -> dict[str, bytes]:
    tokenizer = _tokenizer()
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    ids = {name: tokenizer.token_to_id(name) for name in SPECIAL}
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM, "vocab_size": vocab,
        "max_position_embeddings": MAX_POSITIONS, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
        "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"], "dtype": "bfloat16",
        "torch_dtype": "bfloat16",
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
        "model_max_length": MAX_POSITIONS, "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    generation = {"bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"]}

    def js(data: object) -> bytes:
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    return {"config.json": js(config), "generation_config.json": js(generation),
            "tokenizer.json": tokenizer.to_str().encode(),
            "tokenizer_config.json": js(tokenizer_config),
            "model.safetensors": _safetensors(_tensors(vocab))}


def default_cache() -> Path:
    """``$VLLMFLEET_CACHE`` or ``~/.cache/vllmfleet`` (the folder ``./dev`` uses too)."""
    return Path(os.environ.get("VLLMFLEET_CACHE") or Path.home() / ".cache" / "vllmfleet")


def hub_cache(cache: Path | None = None) -> Path:
    """The folder to give vLLM as ``HF_HUB_CACHE``."""
    return (cache or default_cache()) / "hf" / "hub"


def revision() -> str:
    """The revision name: a digest of the generator's parameters, this file and its corpus."""
    digest = hashlib.sha256(json.dumps(_PARAMS, sort_keys=True).encode())
    digest.update(Path(__file__).read_bytes())
    digest.update("\n".join(_corpus()).encode())
    return digest.hexdigest()[:40]


def snapshot(cache: Path | None = None) -> Path:
    """Where the model's files are (or will be) for the current revision."""
    repo = "models--" + REPO.replace("/", "--")
    return hub_cache(cache) / repo / "snapshots" / revision()


def make(cache: Path | None = None, *, force: bool = False) -> Path:
    """Generate the model (unless a complete one exists) and return its snapshot folder."""
    target = snapshot(cache)
    if (target / _DONE).is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        for name, data in _files().items():
            (tmp / name).write_bytes(data)
        (tmp / _DONE).write_text(revision() + "\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    refs = target.parent.parent / "refs"
    refs.mkdir(exist_ok=True)
    (refs / "main").write_text(revision())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make-tiny-model", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=None,
                        help="the vllmfleet cache folder (default: $VLLMFLEET_CACHE or "
                             "~/.cache/vllmfleet); the model goes to CACHE/hf/hub")
    parser.add_argument("--force", action="store_true", help="generate again even if present")
    args = parser.parse_args(argv)
    path = make(args.cache, force=args.force)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
