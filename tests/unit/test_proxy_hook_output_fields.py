"""The output limit at the proxy hook, as LiteLLM runs it: whatever output-token fields a chat
request carries, in whichever order, no request leaves the pre-call hook asking for more than
the alias's ``max_output_tokens`` — it is refused with a 4xx or every field is within.

Written against the public behaviour only (the files ``inv render`` ships beside LiteLLM's
config, the hook LiteLLM calls), so it holds whatever the hook's internals become. It catches
a hook that checks only the first of ``max_tokens`` / ``max_completion_tokens``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

from fastapi import HTTPException

from tests.conftest import TEMPLATES
from vllmfleet import render
from vllmfleet.inventory import Inventory

FIELDS = ("max_tokens", "max_completion_tokens")


@pytest.fixture(scope="module")
def hooks(reference: Inventory, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    folder = tmp_path_factory.mktemp("litellm")
    # the output limit alone: exact input counting asks the backend's /tokenize, which is not
    # running here (tests/unit/test_proxy_hooks.py covers it)
    approximate = replace(reference, aliases={name: replace(alias, exact_input_tokens=False)
                                              for name, alias in reference.aliases.items()})
    files = render.render_proxy(approximate, templates=TEMPLATES)
    for f in files:
        (folder / Path(f.relpath).name).write_text(f.content, encoding="utf-8")
    saved = os.environ.pop("VLLMFLEET_LIMITS", None)
    try:
        spec = importlib.util.spec_from_file_location("vllmfleet_hooks",
                                                      folder / "vllmfleet_hooks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # as LiteLLM does: not in sys.modules
    finally:
        if saved is not None:
            os.environ["VLLMFLEET_LIMITS"] = saved
    return module


def _names(reference: Inventory) -> list[tuple[str, int]]:
    return [(name, alias.max_output_tokens) for alias in reference.aliases.values()
            for name in alias.names]


def _requests(limit: int) -> list[dict[str, int]]:
    """Both fields in both orders: one within and one over, both over, both within."""
    within, over = max(1, limit // 2), limit * 4
    out = []
    for first, second in (FIELDS, FIELDS[::-1]):
        out += [{first: within, second: over}, {first: over, second: within},
                {first: over, second: over + 1}, {first: within, second: limit}]
    return out


def _pre(hooks: ModuleType, data: dict[str, Any]) -> dict[str, Any] | HTTPException:
    try:
        result = asyncio.run(hooks.handler.async_pre_call_hook(
            user_api_key_dict=None, cache=None, data=data, call_type="acompletion"))
    except HTTPException as exc:
        return exc
    return result if isinstance(result, dict) else data


def test_no_field_leaves_the_hook_over_the_limit(hooks: ModuleType,
                                                 reference: Inventory) -> None:
    escaped = []
    for model, limit in _names(reference):
        for fields in _requests(limit):
            data = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
            outcome = _pre(hooks, dict(data))
            if isinstance(outcome, HTTPException):
                assert 400 <= outcome.status_code < 500, (model, fields, outcome)
                over = [f for f in FIELDS if fields.get(f, 0) > limit]
                assert over, f"{model} {fields}: refused although every field is within"
                assert any(f in str(outcome.detail) for f in over), outcome.detail
                continue
            sent = {f: outcome[f] for f in FIELDS if outcome.get(f) is not None}
            if any(int(v) > limit for v in sent.values()):
                escaped.append((model, fields, sent))
    assert not escaped, f"requests past the output limit: {escaped}"


@pytest.mark.parametrize("order", [FIELDS, FIELDS[::-1]])
def test_requests_within_the_limit_pass_unchanged(hooks: ModuleType, reference: Inventory,
                                                  order: tuple[str, str]) -> None:
    for model, limit in _names(reference):
        fields = {order[0]: 1, order[1]: limit}
        outcome = _pre(hooks, {"model": model,
                                "messages": [{"role": "user", "content": "hi"}], **fields})
        assert isinstance(outcome, dict), (model, outcome)
        assert {f: outcome[f] for f in order} == fields
