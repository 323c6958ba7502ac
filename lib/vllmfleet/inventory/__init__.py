"""The fleet inventory (``configs/fleet.yaml``): typed objects, loading, validation, the plan.

=============  ==================================================================================
model          the dataclasses (:class:`Inventory`, :class:`Host`, :class:`Alias`, …)
schema         YAML value → typed field, with file:line, bounds and a fix for every error
yamldoc        safe YAML reading (duplicate keys, anchors, depth) with line numbers
rules          cross-field rules (references, limits against vLLM, GPU features)
load           :func:`load` / :func:`parse`: all of the above, raising one InventoryError
plan           inventory → vLLM capacity inputs and the capacity plan (``inv plan``)
endpoints      where each server answers: one :class:`Endpoints` and its URL builders
problems       problems formatted for people (``inv validate``)
=============  ==================================================================================
"""

from __future__ import annotations

from vllmfleet.inventory.endpoints import (
    Endpoints,
    endpoints_of,
    key_hint,
    proxy_url,
    vllm_url,
)
from vllmfleet.inventory.load import load, parse
from vllmfleet.inventory.model import (
    GPU,
    SSH,
    VLLM,
    Alias,
    Host,
    Inventory,
    KVCacheDtype,
    Model,
    Platform,
    Proxy,
    Quantization,
)

__all__ = [
    "GPU",
    "SSH",
    "VLLM",
    "Alias",
    "Endpoints",
    "Host",
    "Inventory",
    "KVCacheDtype",
    "Model",
    "Platform",
    "Proxy",
    "Quantization",
    "endpoints_of",
    "key_hint",
    "load",
    "parse",
    "proxy_url",
    "vllm_url",
]
