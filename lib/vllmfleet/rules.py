"""Cross-field rules of the inventory: references, limits against vLLM, GPU features.

Each rule adds problems to the :class:`~vllmfleet.schema.Context`; none raises. Where a
rule encodes a fact about vLLM or LiteLLM the comment says where the fact comes from.
"""

from __future__ import annotations

import difflib
from collections import Counter

from vllmfleet.inventory import Alias, Host, Inventory
from vllmfleet.schema import Context

# Minimum compute capability of vLLM's quantization kernels (vllm/model_executor/layers/
# quantization/*: get_min_capability()). awq_marlin/gptq_marlin need Ampere (8.0).
QUANT_MIN_CAPABILITY: dict[str, tuple[int, int]] = {
    "awq": (7, 5), "awq_marlin": (8, 0), "gptq": (6, 0), "gptq_marlin": (8, 0), "fp8": (8, 0),
}
# vLLM's V1 attention backends implement an fp8_e4m3 KV cache only on Ada/Hopper (8.9+).
FP8_E4M3_MIN_CAPABILITY = (8, 9)
# Rule of thumb of the fleet's operators: proxy max_input is 80-95 % of max_model_len.
INPUT_SHARE = (0.80, 0.95)


def _suggest(name: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(name, known, n=1)
    if hint:
        return f"did you mean {hint[0]!r}?"
    return "known: " + ", ".join(sorted(known)) if known else "define it first"


def check(ctx: Context, inv: Inventory) -> None:
    """Apply every cross-field rule to ``inv``."""
    _check_proxy(ctx, inv)
    for host in inv.hosts.values():
        _check_host(ctx, inv, host)
    _check_unique(ctx, inv)
    for alias in inv.aliases.values():
        _check_alias(ctx, inv, alias)


def _check_proxy(ctx: Context, inv: Inventory) -> None:
    host = inv.hosts.get(inv.proxy.host)
    if host is None:
        ctx.error("proxy.host", f"host {inv.proxy.host!r} is not in hosts:",
                  _suggest(inv.proxy.host, list(inv.hosts)))
    elif host.platform == "windows":
        ctx.error("proxy.host", f"the proxy runs under systemd; {host.name!r} is a windows host",
                  "run the proxy on a linux (or local) host")


def _check_host(ctx: Context, inv: Inventory, host: Host) -> None:
    path = f"hosts.{host.name}"
    if host.platform == "wsl" and not host.wsl_distro:
        ctx.error(f"{path}.wsl_distro", "a wsl host needs wsl_distro",
                  "add wsl_distro: Ubuntu-22.04 (see `wsl -l -q` on the host)")
    if host.vllm is None:
        return
    vllm = host.vllm
    vpath = f"{path}.vllm"
    if host.gpu is None:
        ctx.error(f"{path}.gpu", "a host that runs vLLM needs a gpu: section",
                  "add gpu: {name: ..., vram_gib: ..., compute_capability: '8.9'}")
        return
    gpu = host.gpu
    if ":" not in vllm.image.rsplit("/", 1)[-1] or vllm.image.endswith(":latest"):
        ctx.error(f"{vpath}.image", f"image {vllm.image!r} is not pinned to a version",
                  "name a release tag, e.g. vllm/vllm-openai:v0.11.0")
    if vllm.tensor_parallel_size > gpu.count:
        ctx.error(f"{vpath}.tensor_parallel_size",
                  f"tensor_parallel_size {vllm.tensor_parallel_size} needs that many GPUs; "
                  f"the host has {gpu.count}", f"set it to at most {gpu.count}")
    model = inv.models.get(vllm.model)
    if model is None:
        ctx.error(f"{vpath}.model", f"model {vllm.model!r} is not in the models: catalogue",
                  _suggest(vllm.model, list(inv.models)))
    else:
        if vllm.max_model_len > model.max_position_embeddings:
            ctx.error(f"{vpath}.max_model_len",
                      f"max_model_len {vllm.max_model_len} is above {model.name}'s "
                      f"max_position_embeddings {model.max_position_embeddings}",
                      f"lower it to at most {model.max_position_embeddings}")
        fmt = weight_format(vllm.quantization)
        if fmt not in model.weights_gib:
            ctx.error(f"{vpath}.quantization",
                      f"models.{model.name}.weights_gib has no {fmt!r} entry for quantization "
                      f"{vllm.quantization!r}",
                      f"add weights_gib.{fmt}: <GiB> or use one of "
                      + ", ".join(sorted(model.weights_gib)))
    cap = gpu.capability
    if vllm.quantization is not None:
        need = QUANT_MIN_CAPABILITY[vllm.quantization]
        if cap < need:
            ctx.error(f"{vpath}.quantization",
                      f"{vllm.quantization} kernels need compute capability "
                      f"{need[0]}.{need[1]}; {gpu.name} has {gpu.compute_capability}",
                      "use awq (Turing and newer) or a GPU with the needed capability")
    if vllm.kv_cache_dtype in ("fp8", "fp8_e4m3") and cap < FP8_E4M3_MIN_CAPABILITY:
        ctx.warning(f"{vpath}.kv_cache_dtype",
                    f"kv_cache_dtype {vllm.kv_cache_dtype} (fp8_e4m3) needs compute capability "
                    f"8.9 in vLLM's V1 kernels; {gpu.name} has {gpu.compute_capability}",
                    "use kv_cache_dtype: fp8_e5m2 on this GPU (or auto)")
    if gpu.reserved_gib >= gpu.vram_gib:
        ctx.error(f"{path}.gpu.reserved_gib",
                  f"reserved_gib {gpu.reserved_gib} leaves nothing of {gpu.vram_gib} GiB",
                  "set it to what nvidia-smi shows in use before vLLM starts")


def weight_format(quantization: str | None) -> str:
    """The weights_gib key for a quantization: marlin kernels load the same checkpoints."""
    if quantization is None:
        return "bf16"
    return {"awq_marlin": "awq", "gptq_marlin": "gptq"}.get(quantization, quantization)


def _check_unique(ctx: Context, inv: Inventory) -> None:
    seen: dict[str, str] = {}
    for alias in inv.aliases.values():
        for i, name in enumerate(alias.names):
            where = f"aliases.{alias.name}" if i == 0 else f"aliases.{alias.name}.also[{i - 1}]"
            if name in seen and seen[name] != where:
                ctx.error(where, f"model name {name!r} is used twice (also at {seen[name]})",
                          "every alias name must be unique at the proxy")
            seen.setdefault(name, where)
    ports = Counter((h.address, h.vllm.port) for h in inv.vllm_hosts.values() if h.vllm)
    for host in inv.vllm_hosts.values():
        assert host.vllm is not None
        key = (host.address, host.vllm.port)
        if ports[key] > 1:
            ctx.error(f"hosts.{host.name}.vllm.port",
                      f"{host.address}:{host.vllm.port} is used by more than one vLLM host",
                      "give each vLLM server its own address or port")
    proxy_host = inv.hosts.get(inv.proxy.host)
    if proxy_host is not None and (proxy_host.address, inv.proxy.port) in ports:
        ctx.error("proxy.port", f"port {inv.proxy.port} on {proxy_host.address} is also a vLLM "
                  "port", "choose another proxy port, e.g. 4000")


def _check_alias(ctx: Context, inv: Inventory, alias: Alias) -> None:
    path = f"aliases.{alias.name}"
    host = inv.hosts.get(alias.host)
    if host is None:
        ctx.error(f"{path}.host", f"host {alias.host!r} is not in hosts:",
                  _suggest(alias.host, list(inv.hosts)))
        return
    if host.vllm is None:
        ctx.error(f"{path}.host", f"host {alias.host!r} does not run vLLM (no vllm: section)",
                  "point the alias at a host with a vllm: section")
        return
    if alias.profile_of is not None:
        _check_profile(ctx, inv, alias)
    mml = host.vllm.max_model_len
    total = alias.max_input_tokens + alias.max_output_tokens
    if total > mml:
        ctx.error(f"{path}.max_input_tokens",
                  f"max_input_tokens {alias.max_input_tokens} + max_output_tokens "
                  f"{alias.max_output_tokens} = {total} exceeds {alias.host}'s max_model_len {mml}",
                  f"lower them so they add up to at most {mml}")
    share = alias.max_input_tokens / mml
    if not INPUT_SHARE[0] <= share <= INPUT_SHARE[1]:
        ctx.warning(f"{path}.max_input_tokens",
                    f"max_input_tokens {alias.max_input_tokens} is {share:.0%} of "
                    f"{alias.host}'s max_model_len {mml}; the rule of thumb is 80-95 %",
                    f"use {int(mml * 0.85)}-{int(mml * 0.9)} unless you mean it")
    if alias.concurrency > host.vllm.max_num_seqs:
        ctx.warning(f"{path}.concurrency",
                    f"concurrency {alias.concurrency} is above {alias.host}'s max_num_seqs "
                    f"{host.vllm.max_num_seqs}: the extra requests wait in vLLM's queue",
                    "count them in queue_depth instead")


def _check_profile(ctx: Context, inv: Inventory, alias: Alias) -> None:
    path = f"aliases.{alias.name}.profile_of"
    assert alias.profile_of is not None
    base = inv.aliases.get(alias.profile_of)
    if base is None:
        ctx.error(path, f"alias {alias.profile_of!r} is not in aliases:",
                  _suggest(alias.profile_of, list(inv.aliases)))
        return
    if base.host != alias.host:
        ctx.error(path, f"a profile must use its base's host ({base.host!r}), not {alias.host!r}",
                  f"set host: {base.host}")
    weaker = [key for key in ("max_input_tokens", "max_output_tokens", "tpm", "rpm", "concurrency")
              if getattr(alias, key) < getattr(base, key)]
    if weaker:
        ctx.warning(path, f"profile {alias.name!r} is weaker than its base {base.name!r} in "
                    + ", ".join(weaker), "a burst profile should allow at least what its base does")
