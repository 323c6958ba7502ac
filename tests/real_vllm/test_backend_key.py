"""Only the proxy reaches vLLM: the real server of the lane runs with the fleet's backend key
(``VLLM_API_KEY``, which vLLM 0.32 reads as ``--api-key``: ``vllm/envs.py``,
``entrypoints/serve/middleware/register.py``) and refuses ``/v1`` requests without it."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("sent", [None, "wrong-key-0123456789abcdef"], ids=["no-key", "wrong-key"])
def test_a_request_without_the_backend_key_is_a_401(real_vllm_url: str, real_vllm_key: str | None,
                                                    sent: str | None) -> None:
    if real_vllm_key is None:
        pytest.fail("the lane's vLLM runs without a backend key: anyone on the LAN could skip "
                    "the proxy")
    headers = {"Authorization": f"Bearer {sent}"} if sent else {}
    with httpx.Client(base_url=real_vllm_url, timeout=30, trust_env=False) as client:
        assert client.get("/v1/models", headers=headers).status_code == 401
        ok = client.get("/v1/models", headers={"Authorization": f"Bearer {real_vllm_key}"})
        assert ok.status_code == 200
