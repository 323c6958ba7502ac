"""Fixtures for tests against a real vLLM (the ``nox -s real_vllm`` lane).

The lane runs ``pytest --fleet local --engine vllm --fleet-config=configs/fleet-vllm-cpu.yaml
pytest_vllmfleet/suites/... tests/real_vllm``: the plugin's session ``fleet`` starts one real
vLLM (CPU build, generated tiny Llama) per host of that inventory with LiteLLM in front, and
every test here shares it. Outside the lane (``./dev test``: the emulator engine and no
``VLLMFLEET_REAL_VLLM_URL``) these tests are skipped, saying how to run them.

- ``real_vllm_url``: the base URL (``http://127.0.0.1:PORT``) of a real vLLM:
  ``$VLLMFLEET_REAL_VLLM_URL`` when set (a server you started), else the local fleet's first
  vLLM host when the run uses ``--engine vllm``.
- ``real_vllm_model``: the served model name at that URL (from its ``/v1/models``).
- ``real_vllm_fleet``: the plugin's :class:`~pytest_vllmfleet.fleet.Fleet` (engine vllm only):
  every host, the proxy and its key.
- For tests that read the environment (the differential test), an autouse fixture sets
  ``VLLMFLEET_REAL_VLLM_URL`` and ``VLLMFLEET_REAL_VLLM_MAX_NUM_SEQS`` (that host's
  ``--max-num-seqs``) from the fleet before any of them runs, unless already set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from pytest_vllmfleet.fleet import Fleet
from pytest_vllmfleet.plugin import state_of
from vllmfleet import render
from vllmfleet.render import flag_value

URL_ENV = "VLLMFLEET_REAL_VLLM_URL"
SEQS_ENV = "VLLMFLEET_REAL_VLLM_MAX_NUM_SEQS"
QUEUED_ENV = "VLLMFLEET_REAL_VLLM_MAX_NUM_QUEUED_REQS"
# the backend key the server was started with (VLLM_API_KEY): only the proxy, and these tests,
# hold it; without it every /v1 request is a 401
KEY_ENV = "VLLMFLEET_REAL_VLLM_API_KEY"
HOW = ("a real vLLM is needed: run `nox -s real_vllm`, or pytest --fleet local --engine vllm "
       f"--fleet-config=configs/fleet-vllm-cpu.yaml tests/real_vllm, or set {URL_ENV}")


def _engine_is_vllm(config: pytest.Config) -> bool:
    return state_of(config).settings.engine == "vllm"


@pytest.fixture(scope="session")
def real_vllm_fleet(request: pytest.FixtureRequest) -> Fleet:
    """The session's local fleet of real vLLM servers (``--engine vllm`` only)."""
    if not _engine_is_vllm(request.config):
        pytest.skip(HOW)
    fleet: Fleet = request.getfixturevalue("fleet")
    return fleet


@pytest.fixture(scope="session", autouse=True)
def _real_vllm_env(request: pytest.FixtureRequest) -> Iterator[None]:
    """Point environment-configured tests at the fleet's first host (engine vllm only)."""
    if os.environ.get(URL_ENV) or not _engine_is_vllm(request.config):
        yield
        return
    fleet: Fleet = request.getfixturevalue("real_vllm_fleet")
    host = fleet.hosts[0]
    os.environ[URL_ENV] = fleet.endpoints.hosts[host]
    os.environ[SEQS_ENV] = str(fleet.vllm(host).max_num_seqs)
    queued = flag_value(render.vllm_args(fleet.inventory.hosts[host], inventory=fleet.inventory),
                        "--max-num-queued-reqs")
    if queued is not None:  # the bound the rendered flags give this host (vLLM 0.29+)
        os.environ[QUEUED_ENV] = queued
    if fleet.endpoints.backend_key:
        os.environ[KEY_ENV] = fleet.endpoints.backend_key
    try:
        yield
    finally:
        for name in (URL_ENV, SEQS_ENV, QUEUED_ENV, KEY_ENV):
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def real_vllm_url(request: pytest.FixtureRequest) -> str:
    """The base URL of a real vLLM (see the module docstring)."""
    url = os.environ.get(URL_ENV)
    if url:
        return url.rstrip("/")
    fleet: Fleet = request.getfixturevalue("real_vllm_fleet")
    return fleet.endpoints.hosts[fleet.hosts[0]]


@pytest.fixture(scope="session")
def real_vllm_key(real_vllm_url: str) -> str | None:
    """The backend key of the real vLLM at ``real_vllm_url`` (None: it has none)."""
    return os.environ.get(KEY_ENV) or None


def key_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture(scope="session")
def real_vllm_model(real_vllm_url: str, real_vllm_key: str | None) -> str:
    """The model served at ``real_vllm_url``."""
    with httpx.Client(base_url=real_vllm_url, timeout=30, trust_env=False,
                      headers=key_headers(real_vllm_key)) as client:
        cards = client.get("/v1/models").json()["data"]
    model: str = cards[0]["id"]
    return model
