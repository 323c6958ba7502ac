"""deploy.all deploys the vLLM hosts in parallel — their deploy windows overlap — and the proxy
only after every one of them has finished. Each host's deploy waits on a barrier that both
must reach: run one after another, the first would never get past it (the barrier's timeout
turns that into a failure instead of a hang)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.conftest import TEMPLATES
from vllmfleet.deploy import run
from vllmfleet.deploy.apply import Options
from vllmfleet.deploy.run import Access
from vllmfleet.inventory import Inventory


def test_gpu_hosts_overlap_and_the_proxy_comes_after(reference: Inventory,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Any) -> None:
    gpu_hosts = list(reference.vllm_hosts)
    assert len(gpu_hosts) >= 2
    barrier = threading.Barrier(len(gpu_hosts), timeout=10)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def fake_deploy(inventory: Inventory, name: str, **kwargs: Any) -> str:
        with lock:
            events.append(("start", name))
        if kwargs.get("services") == ("vllm",):
            barrier.wait()  # BrokenBarrierError when the hosts do not overlap
        with lock:
            events.append(("end", name))
        return name

    monkeypatch.setattr(run, "deploy_host", fake_deploy)
    outcomes = run.deploy_all(reference, access=Access(templates=TEMPLATES),
                              options=Options(store=tmp_path), say=lambda _m: None)
    assert outcomes == [*gpu_hosts, reference.proxy.host]  # type: ignore[comparison-overlap]
    starts = [i for i, (what, name) in enumerate(events) if what == "start" and name in gpu_hosts]
    ends = [i for i, (what, name) in enumerate(events) if what == "end" and name in gpu_hosts]
    assert max(starts) < min(ends)  # every GPU host started before any finished
    assert events[-2:] == [("start", reference.proxy.host), ("end", reference.proxy.host)]
