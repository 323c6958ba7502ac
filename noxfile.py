"""CI sessions: `nox -l` lists them; `nox` runs lint, typecheck and tests."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint the library, plugin, tasks and tests."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library, the plugin, tasks.py and this file."""
    session.install("-e", ".[dev]")
    session.run("mypy", *session.posargs)


@nox.session
def imports(session: nox.Session) -> None:
    """Import contracts (import-linter): the library's layers, no cycles, closed packages."""
    session.install("-e", ".[dev]")
    session.run("lint-imports", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, real LiteLLM included (pass pytest arguments after --)."""
    session.install("-e", ".[proxy,dev]")
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def acceptance(session: nox.Session) -> None:
    """The fleet's acceptance suites against a local fleet (pytest -m ...; add --host etc.)."""
    session.install("-e", ".[proxy,dev]")
    session.run("pytest", "-m", "context_limit or burst or rejection", *session.posargs)


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
