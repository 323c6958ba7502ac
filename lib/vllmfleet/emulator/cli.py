"""Command line of the emulator: vLLM's own ``serve`` flags plus ``--emulator-…`` flags.

The vLLM half mirrors ``vllm serve`` (v0.11): the flags below, ``--model`` or a
positional model (``… serve MODEL``), ``--flag=value`` and ``--flag_with_underscores``
(vLLM's FlexibleArgumentParser accepts both), ``--config FILE.yaml``, and the same
``choices``. Anything else is rejected as argparse does (exit 2, "unrecognized
arguments"), so a wrongly rendered launch fails here as it would on a host. Flags the
emulator has no use for are accepted and ignored, like a real server ignores what does
not apply to it.

The emulator's own flags all start with ``--emulator-`` so they never collide with vLLM's;
:func:`parse` resolves everything into an :class:`~vllmfleet.emulator.config.EmulatorConfig`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from vllmfleet.emulator.config import ARCHITECTURE_FIELDS, EmulatorConfig, Faults, GPUFacts, Speed
from vllmfleet.vllm.architecture import Architecture
from vllmfleet.vllm.versions import FACTS, facts_for, format_version, parse_version

PROG = "python -m vllmfleet.emulator"
DEFAULT_VERSION = "0.11.0"
KV_CACHE_DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla")
QUANTIZATIONS = (
    "aqlm", "awq", "awq_marlin", "bitblas", "bitsandbytes", "compressed-tensors", "deepspeedfp",
    "experts_int8", "fbgemm_fp8", "fp8", "gguf", "gptq", "gptq_bitblas", "gptq_marlin",
    "gptq_marlin_24", "hqq", "ipex", "marlin", "modelopt", "modelopt_fp4", "moe_wna16",
    "mxfp4", "neuron_quant", "ptpc_fp8", "qqq", "quark", "rtn", "torchao", "tpu_int8",
)
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

# vLLM flags the emulator accepts and ignores, by how they parse.
_IGNORED_VALUE = (
    "--tokenizer", "--tokenizer-mode", "--revision", "--code-revision", "--tokenizer-revision",
    "--hf-config-path", "--hf-token", "--hf-overrides", "--load-format", "--config-format",
    "--model-loader-extra-config", "--ignore-patterns", "--distributed-executor-backend",
    "--max-parallel-loading-workers", "--block-size", "--swap-space", "--cpu-offload-gb",
    "--num-gpu-blocks-override", "--kv-cache-memory-bytes", "--prefix-caching-hash-algo",
    "--mamba-cache-dtype", "--max-logprobs", "--logprobs-mode", "--max-seq-len-to-capture",
    "--rope-scaling", "--rope-theta", "--model-impl", "--override-generation-config",
    "--override-attention-dtype", "--limit-mm-per-prompt", "--mm-processor-kwargs",
    "--mm-processor-cache-gb", "--max-loras", "--max-lora-rank", "--max-cpu-loras",
    "--lora-dtype", "--max-num-partial-prefills", "--max-long-partial-prefills",
    "--long-prefill-token-threshold", "--num-lookahead-slots", "--scheduling-policy",
    "--speculative-config", "--compilation-config", "-O", "--cuda-graph-sizes",
    "--show-hidden-metrics-for-version", "--otlp-traces-endpoint",
    "--collect-detailed-traces", "--guided-decoding-backend", "--structured-outputs-config",
    "--reasoning-parser", "--tool-call-parser", "--tool-parser-plugin", "--response-role",
    "--chat-template-content-format", "--root-path", "--ssl-keyfile", "--ssl-certfile",
    "--ssl-ca-certs", "--ssl-cert-reqs", "--allowed-origins", "--allowed-methods",
    "--allowed-headers", "--max-log-len", "--pipeline-parallel-size", "-pp",
    "--data-parallel-size", "-dp", "--api-server-count", "--task", "--runner", "--convert",
    "--worker-cls", "--pt-load-map-location", "--allowed-local-media-path", "--device",
    "--logits-processors", "--h11-max-incomplete-event-size", "--h11-max-header-count",
)
_IGNORED_BOOL = (
    "--enable-prefix-caching", "--enable-chunked-prefill", "--disable-sliding-window",
    "--disable-cascade-attn", "--skip-tokenizer-init", "--enable-prompt-embeds",
    "--enable-sleep-mode", "--enable-lora", "--fully-sharded-loras", "--enable-expert-parallel",
    "--disable-custom-all-reduce", "--calculate-kv-scales", "--disable-chunked-mm-input",
    "--async-scheduling", "--use-tqdm-on-load", "--enable-auto-tool-choice",
    "--enable-prompt-tokens-details", "--enable-force-include-usage",
    "--enable-server-load-tracking", "--enable-request-id-headers",
    "--return-tokens-as-token-ids", "--disable-fastapi-docs", "--allow-credentials",
    "--disable-frontend-multiprocessing", "--enable-log-outputs", "--headless",
    "--enable-ssl-refresh", "--disable-mm-preprocessor-cache",
)
_IGNORED_LISTS = ("--lora-modules", "--middleware")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _max_model_len(text: str) -> int:
    """vLLM's human-readable ints: 16384, 16k (x1000), 16K (x1024), 1m, 1M; at least 1.

    ``inf``, ``nan`` and values below 1 are argparse errors (exit 2), not tracebacks.
    ``auto`` and ``-1`` (vLLM 0.14+: fit the longest length the KV cache holds) give -1;
    the start-up checks refuse it on versions without auto-fit.
    """
    if text.strip() in ("auto", "-1"):
        return -1
    scale = {"k": 1000, "K": 1024, "m": 1000**2, "M": 1024**2}.get(text[-1:], 1)
    digits = text[:-1] if scale != 1 else text
    try:
        value = int(float(digits) * scale)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"invalid max model length {text!r}: use an integer such as 16384 or 16k") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"invalid max model length {text!r}: it must be at least 1 token, "
            "e.g. 16384 or 16k") from None
    return value


def _positive(kind: type[int] | type[float]) -> Any:
    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") \
                from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value
    convert.__name__ = kind.__name__
    return convert


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, allow_abbrev=False,
                usage="%(prog)s [serve] [MODEL] [vLLM flags] [--emulator-... flags]",
                description="A stand-in for `vllm serve`: vLLM's HTTP API, length rules, "
                            "scheduling and start-up checks, without a GPU.")
    p.add_argument("model_tag", nargs="?", help="the model, as in `vllm serve MODEL`")
    v = p.add_argument_group("vLLM flags (same meaning as `vllm serve`)")
    v.add_argument("--model", help="model name or path (vLLM's default: Qwen/Qwen3-0.6B)")
    v.add_argument("--served-model-name", nargs="+", help="the name(s) the API answers to")
    v.add_argument("--host", default=None, help="address to bind (default: all)")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--max-model-len", type=_max_model_len)
    v.add_argument("--max-num-seqs", type=_positive(int))
    v.add_argument("--max-num-batched-tokens", type=_positive(int))
    v.add_argument("--max-num-queued-reqs", type=int, help="cap on running + waiting "
                   "requests; beyond it 503 (vLLM 0.29+)")
    v.add_argument("--max-num-queued-tokens", type=int, help=argparse.SUPPRESS)
    v.add_argument("--gpu-memory-utilization", type=float, default=None,
                   help="default: the emulated version's (0.9; 0.92 in 0.32)")
    v.add_argument("--kv-cache-dtype", choices=KV_CACHE_DTYPES, default="auto")
    v.add_argument("--quantization", "-q", choices=QUANTIZATIONS, default=None)
    v.add_argument("--tensor-parallel-size", "-tp", type=_positive(int), default=1)
    v.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction, default=False)
    v.add_argument("--dtype", choices=DTYPES, default="auto")
    v.add_argument("--trust-remote-code", action=argparse.BooleanOptionalAction, default=False)
    v.add_argument("--download-dir")
    v.add_argument("--disable-log-requests", action="store_true")
    v.add_argument("--enable-log-requests", action=argparse.BooleanOptionalAction, default=False)
    v.add_argument("--disable-log-stats", action="store_true")
    v.add_argument("--disable-uvicorn-access-log", action="store_true")
    v.add_argument("--api-key", nargs="+", help="require `Authorization: Bearer KEY` on /v1")
    v.add_argument("--uvicorn-log-level", choices=LOG_LEVELS, default="info")
    v.add_argument("--generation-config", default="auto")
    v.add_argument("--chat-template")
    v.add_argument("--seed", type=int)
    v.add_argument("--config", help="a YAML file of flags (keys without the leading --)")
    for flag in _IGNORED_VALUE:
        v.add_argument(flag, help=argparse.SUPPRESS)
    for flag in _IGNORED_BOOL:
        v.add_argument(flag, action=argparse.BooleanOptionalAction, help=argparse.SUPPRESS)
    for flag in _IGNORED_LISTS:
        v.add_argument(flag, nargs="+", help=argparse.SUPPRESS)

    e = p.add_argument_group("emulator flags")
    e.add_argument("--emulator-vllm-version", default=DEFAULT_VERSION,
                   help="vLLM version to behave like (length rules, error bodies); "
                        f"default {DEFAULT_VERSION}")
    e.add_argument("--emulator-time-scale", type=_non_negative, default=1.0,
                   help="multiplies every emulated duration; 0 = no delay at all")
    e.add_argument("--emulator-prefill-tps", type=_positive(float), default=4000.0,
                   help="prompt tokens per second")
    e.add_argument("--emulator-decode-tps", type=_positive(float), default=60.0,
                   help="generated tokens per second, shared by the running requests")
    e.add_argument("--emulator-output-tokens", type=_positive(int), default=128,
                   help="answer length before the model 'stops' (max_tokens may cut it)")
    e.add_argument("--emulator-gpu-vram-gib", type=_positive(float))
    e.add_argument("--emulator-gpu-reserved-gib", type=_non_negative)
    e.add_argument("--emulator-compute-capability", metavar="X.Y")
    for name in ARCHITECTURE_FIELDS:
        kind = float if name == "weights_gib" else int
        e.add_argument(f"--emulator-{name.replace('_', '-')}", type=_positive(kind))
    e.add_argument("--emulator-fail-at-start", nargs="?", metavar="MESSAGE",
                   const=Faults.DEFAULT_START_FAILURE,
                   help="exit with an error after loading, as a broken start does")
    e.add_argument("--emulator-crash-after", type=_positive(int), metavar="N",
                   help="the engine dies after N finished requests: /health 503, then exit 1")
    e.add_argument("--emulator-crash-linger", type=_non_negative, default=1.0, metavar="S",
                   help="seconds between the crash and the exit (default 1)")
    e.add_argument("--emulator-slow-start", type=_non_negative, default=0.0, metavar="S",
                   help="seconds 'loading the model' before the port opens")
    return p


def _normalise(argv: Sequence[str]) -> list[str]:
    """vLLM's FlexibleArgumentParser: --a_b → --a-b, a leading `serve`, --config FILE."""
    out: list[str] = []
    args = list(argv)
    if args[:1] == ["serve"]:
        args = args[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and not arg.startswith("--emulator"):
            key, eq, value = arg.partition("=")
            arg = "--" + key[2:].replace("_", "-") + eq + value
        if arg == "--config" and i + 1 < len(args):
            out.extend(_config_args(args[i + 1]))
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _config_args(path: str) -> list[str]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        build_parser().error(f"argument --config: cannot read {path}: {exc}")
    if not isinstance(data, dict):
        build_parser().error(f"argument --config: {path} must be a mapping of flag: value")
    out: list[str] = []
    for key, value in data.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            out += [flag, *map(str, value)]
        else:
            out += [flag, str(value)]
    return out


def parse(argv: Sequence[str] | None = None) -> EmulatorConfig:
    """Parse ``argv`` (default: sys.argv[1:]); bad flags exit 2 with argparse's message."""
    parser = build_parser()
    ns = parser.parse_args(_normalise(sys.argv[1:] if argv is None else argv))
    try:
        return _config(ns)
    except ValueError as exc:
        parser.error(str(exc))


def _config(ns: argparse.Namespace) -> EmulatorConfig:
    if ns.model_tag and ns.model and ns.model_tag != ns.model:
        raise ValueError(f"the model is given twice: positional {ns.model_tag!r} and "
                         f"--model {ns.model!r}; give one")
    model = ns.model_tag or ns.model or "Qwen/Qwen3-0.6B"
    version = ns.emulator_vllm_version
    try:
        version_key = parse_version(version)
    except ValueError as exc:
        raise ValueError(f"argument --emulator-vllm-version: {exc}") from None
    facts = facts_for(version_key)
    for flag, value in (("--max-num-queued-reqs", ns.max_num_queued_reqs),
                        ("--max-num-queued-tokens", ns.max_num_queued_tokens)):
        if value is not None and not facts.has_flag(flag):  # vLLM's argparse would refuse it
            raise ValueError(f"unrecognized arguments: {flag} (vLLM {version} does not have "
                             f"it; it exists from {format_version(FACTS[flag].since)})")
        if value is not None and value < 0:
            raise ValueError(f"argument {flag}: must be 0 or more, got {value}")
    if ns.gpu_memory_utilization is None:
        ns.gpu_memory_utilization = facts.default_gpu_memory_utilization
    if not 0 < ns.gpu_memory_utilization <= 1:
        raise ValueError(f"argument --gpu-memory-utilization: {ns.gpu_memory_utilization} "
                         "must be a fraction in (0, 1], e.g. 0.9")
    gpu, arch, weights_gib = _facts(ns)
    max_model_len = ns.max_model_len
    if max_model_len is None:
        if arch is None:
            raise ValueError("the emulator has no model config to derive max_model_len from: "
                             "pass --max-model-len or --emulator-max-position-embeddings")
        max_model_len = arch.max_position_embeddings
    api_keys = ns.api_key or ([os.environ["VLLM_API_KEY"]] if os.environ.get("VLLM_API_KEY")
                              else [])
    log_requests = ns.enable_log_requests or (version_key < (0, 10)
                                              and not ns.disable_log_requests)
    return EmulatorConfig(
        model=model, served_model_names=tuple(ns.served_model_name or [model]),
        host=ns.host, port=ns.port, max_model_len=max_model_len,
        max_num_seqs=ns.max_num_seqs or 256, max_num_batched_tokens=ns.max_num_batched_tokens,
        max_num_queued_reqs=ns.max_num_queued_reqs,
        gpu_memory_utilization=ns.gpu_memory_utilization, kv_cache_dtype=ns.kv_cache_dtype,
        quantization=ns.quantization, tensor_parallel_size=ns.tensor_parallel_size,
        enforce_eager=ns.enforce_eager, api_keys=tuple(api_keys), version=version,
        log_requests=log_requests, log_stats=not ns.disable_log_stats,
        access_log=not ns.disable_uvicorn_access_log, log_level=ns.uvicorn_log_level,
        gpu=gpu, architecture=arch, weights_gib=weights_gib,
        speed=Speed(time_scale=ns.emulator_time_scale, prefill_tps=ns.emulator_prefill_tps,
                    decode_tps=ns.emulator_decode_tps,
                    output_tokens=ns.emulator_output_tokens),
        faults=Faults(fail_at_start=ns.emulator_fail_at_start,
                      crash_after=ns.emulator_crash_after, crash_linger_s=ns.emulator_crash_linger,
                      slow_start_s=ns.emulator_slow_start),
    )


def _facts(ns: argparse.Namespace
           ) -> tuple[GPUFacts | None, Architecture | None, float | None]:
    """GPU, architecture and weights (GiB) from the --emulator-… flags (the local fleet
    derives them from the inventory: :func:`vllmfleet.localfleet.facts.emulator_facts`)."""
    arch_values = {name: getattr(ns, f"emulator_{name}") for name in ARCHITECTURE_FIELDS}
    given = [f"--emulator-{k.replace('_', '-')}" for k, v in arch_values.items() if v is not None]
    capability = ns.emulator_compute_capability
    if capability is not None and not _is_capability(capability):
        raise ValueError(f"argument --emulator-compute-capability: {capability!r} is not "
                         "MAJOR.MINOR, e.g. 8.9")
    if ns.emulator_gpu_vram_gib is None:
        if given:
            raise ValueError("the architecture flags (" + ", ".join(given) + ") need "
                             "--emulator-gpu-vram-gib too; the capacity check uses them all")
        return None, None, None
    missing = [f"--emulator-{k.replace('_', '-')}" for k, v in arch_values.items() if v is None]
    if missing:
        raise ValueError("--emulator-gpu-vram-gib needs the model's architecture too; "
                         "missing: " + ", ".join(missing)
)
    gpu = GPUFacts(vram_gib=ns.emulator_gpu_vram_gib,
                   reserved_gib=ns.emulator_gpu_reserved_gib or 0.0,
                   compute_capability=capability or "8.9")
    weights_gib = arch_values.pop("weights_gib")
    return gpu, Architecture(**arch_values), weights_gib


def _is_capability(text: str) -> bool:
    major, dot, minor = text.partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit()
