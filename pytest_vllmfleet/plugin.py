"""pytest hooks of vllmfleet: options, markers, parametrisation, fixtures and reports.

Thin by design: the fleet's behaviour lives in :mod:`vllmfleet` (clients, prompts, load,
reports); option precedence in :mod:`pytest_vllmfleet.settings`, marker arguments in
:mod:`pytest_vllmfleet.markers`, the session's fleet in :mod:`pytest_vllmfleet.fleet`.

A test asks for ``fleet_host`` / ``fleet_target`` / ``fleet_alias`` and is parametrised
with the selected hosts (``--host``), targets (``--target``) and those hosts' proxy
aliases, with the names as ids: ``test_burst[wintermute-proxy]``. A test that pins
``fleet_target`` itself (``@pytest.mark.parametrize("fleet_target", ["proxy"])``) is
deselected when ``--target`` excludes that target.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import types
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_vllmfleet import markers, selection, settings
from vllmfleet.acceptance.reports import Report
from vllmfleet.errors import FleetError, InventoryError
from vllmfleet.inventory import Alias, Inventory, load

if TYPE_CHECKING:  # the clients (httpx) load when a test first asks for the fleet
    from pytest_vllmfleet.fleet import EarlyStart, Fleet
    from vllmfleet.client import FleetClient, Result
    from vllmfleet.client.load import LoadRun
    from vllmfleet.client.prompts import PromptBuilder

GROUP = "vllmfleet"


@dataclass(kw_only=True)
class State:
    """Everything the plugin knows in one session (kept in ``config.stash``)."""

    settings: settings.Settings
    inventory: Inventory | None = None
    problem: str = ""  # why the fleet is unavailable (no or bad inventory)
    hosts: tuple[str, ...] = ()
    suites_added: bool = False
    report: Report = field(default_factory=Report)
    written: list[Path] = field(default_factory=list)
    fleet: Fleet | None = None
    early: EarlyStart | None = None

    def require(self) -> Inventory:
        if self.inventory is None:
            pytest.fail(f"vllmfleet: {self.problem}", pytrace=False)
        return self.inventory


STATE = pytest.StashKey[State]()


def state_of(config: pytest.Config) -> State:
    return config.stash[STATE]


# -- options and configuration -------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    """The option group; each option also has an ini key and an environment variable."""
    group = parser.getgroup(GROUP, "vllmfleet: run the fleet's acceptance suites")
    settings.add_options(group, parser)


def _load_inventory(state: State, needed: bool) -> None:
    s = state.settings
    if not s.inventory.is_file() and not s.inventory_explicit:
        state.problem = (f"no inventory at {s.inventory}; pass --fleet-config PATH "
                         "(or set VLLMFLEET_FLEET_CONFIG / vllmfleet_fleet_config)")
    else:
        try:
            state.inventory = load(s.inventory)
        except InventoryError as exc:
            state.problem = f"the inventory from {s.inventory_where} is not usable:\n{exc}"
    if state.inventory is None:
        if needed:
            raise pytest.UsageError(f"vllmfleet: {state.problem}")
        return
    state.hosts = settings.check_hosts(s, list(state.inventory.vllm_hosts), s.inventory)


def _client_fixture(host: str) -> Callable[..., FleetClient]:
    def client(fleet: Fleet) -> FleetClient:
        return fleet.client(host)

    client.__doc__ = f"The direct client of vLLM host {host} (from the inventory)."
    return client


HOST_FIXTURES = "vllmfleet-host-fixtures"


def _register_host_fixtures(config: pytest.Config, inventory: Inventory) -> None:
    """A ``<host>_client`` fixture per vLLM host of the inventory (``wintermute_client``)."""
    if config.pluginmanager.has_plugin(HOST_FIXTURES):
        return  # registered once per run: twice, `pytest --fixtures` could not sort them
    holder = types.ModuleType("pytest_vllmfleet.host_fixtures")
    for host in inventory.vllm_hosts:
        name = host.replace("-", "_").replace(".", "_") + "_client"
        if name.isidentifier() and not hasattr(holder, name):
            function = _client_fixture(host)
            function.__name__ = function.__qualname__ = name  # distinct in every listing
            setattr(holder, name, pytest.fixture(name=name, scope="session")(function))
    config.pluginmanager.register(holder, HOST_FIXTURES)


def pytest_configure(config: pytest.Config) -> None:
    for line in markers.MARKERS:
        config.addinivalue_line("markers", line)
    state = State(settings=settings.resolve(config))
    config.stash[STATE] = state
    state.suites_added = selection.add_packaged_suites(config)
    _load_inventory(state, needed=bool(state.settings.explicit) or state.suites_added)
    if state.inventory is not None:
        _register_host_fixtures(config, state.inventory)


def _fleet_workdir(config: pytest.Config) -> Path:
    """A fresh folder for the local fleet's state and logs (pytest's basetemp when known)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if isinstance(factory, pytest.TempPathFactory):
        return factory.mktemp("local-fleet")
    return Path(tempfile.mkdtemp(prefix="vllmfleet-local-fleet-"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run that selected suites using ``fleet`` starts the local fleet during collection.

    ``-m rollback`` alone does not: the rollback suite deploys its own fleet, and a second
    one nobody uses would compete with it for the CPU. If, once collection and deselection
    are done, no selected test uses ``fleet`` after all, :func:`pytest_collection_finish`
    stops the early start.
    """
    state = state_of(session.config)
    if session.config.getoption("collectonly"):
        return
    expression = str(session.config.getoption("markexpr") or "")
    if state.suites_added and state.settings.mode == "local" and state.inventory is not None \
            and selection.selects_fleet_suites(expression):
        from pytest_vllmfleet.fleet import EarlyStart

        state.early = EarlyStart(state.inventory, _fleet_workdir(session.config),
                                 speed=state.settings.speed, engine=state.settings.engine)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop an early-started local fleet when no selected test uses ``fleet``."""
    state = state_of(session.config)
    if state.early is None:
        return
    if not any("fleet" in getattr(item, "fixturenames", ()) for item in session.items):
        state.early.discard()
        state.early = None


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = state_of(config)
    s = state.settings
    if state.inventory is None:
        return [f"vllmfleet: fleet suites unavailable: {state.problem.splitlines()[0]}"]
    suites = f", packaged suites from {selection.SUITES_DIR}" if state.suites_added else ""
    engine = f", engine={s.engine}" if s.engine != "emulator" else ""
    return [f"vllmfleet: fleet={s.mode}{engine}, inventory={s.inventory}, "
            f"targets={'+'.join(s.targets)}, hosts={', '.join(state.hosts) or 'none'}{suites}"]


# -- parametrisation and selection -------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = state_of(metafunc.config)
    inventory = state.inventory
    wanted = set(metafunc.fixturenames) & set(selection.PARAMS)
    if inventory is None or not wanted:
        return
    pinned = selection.pinned(metafunc)
    if "fleet_alias" in wanted - pinned:
        aliases = [a for a in inventory.aliases.values() if a.host in state.hosts]
        metafunc.parametrize("fleet_alias", aliases, ids=[a.name for a in aliases])
    if "fleet_host" in wanted - pinned:
        metafunc.parametrize("fleet_host", list(state.hosts), ids=list(state.hosts))
    if "fleet_target" in wanted - pinned:
        targets = list(state.settings.targets)
        metafunc.parametrize("fleet_target", targets, ids=targets)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check suite marker arguments; deselect tests pinned to a target not selected."""
    for item in items:
        try:
            markers.check_item(item)
        except markers.MarkerError as exc:
            raise pytest.UsageError(f"vllmfleet: {exc}") from None
    targets = state_of(config).settings.targets
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        spec = getattr(item, "callspec", None)
        target = spec.params.get("fleet_target") if spec is not None else None
        (dropped if target is not None and target not in targets else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """A FleetError in a fleet test is a finding: fail with its message, no traceback."""
    try:
        return (yield)
    except FleetError as exc:
        from pytest_vllmfleet.fleet import Fleet

        if not isinstance(pyfuncitem.funcargs.get("fleet"), Fleet):
            raise  # not a test of ours (a project may have its own "fleet" fixture)
        pytest.fail(f"vllmfleet: {exc}", pytrace=False)


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """The fleet under test: the local fleet (started once per session) or the real one."""
    from pytest_vllmfleet.fleet import start

    state = state_of(request.config)
    inventory = state.require()
    early = state.early
    local = state.settings.mode == "local"
    workdir = early.workdir if early is not None else (
        _fleet_workdir(request.config) if local else None)
    try:
        the_fleet = start(mode=state.settings.mode, inventory=inventory, hosts=state.hosts,
                          workdir=workdir, speed=state.settings.speed, early=early,
                          engine=state.settings.engine)
    except FleetError as exc:
        pytest.fail(f"vllmfleet: the {state.settings.mode} fleet is not available: {exc}",
                    pytrace=False)
    state.fleet = the_fleet
    yield the_fleet
    the_fleet.close()


def _not_parametrized(name: str, request: pytest.FixtureRequest) -> None:
    problem = state_of(request.config).problem
    pytest.fail(f"vllmfleet: {name} is parametrised from the inventory, but "
                + (problem or "this test was not parametrised"), pytrace=False)


@pytest.fixture
def fleet_host(request: pytest.FixtureRequest) -> str:
    """The vLLM host under test (parametrised: every host selected by --host)."""
    _not_parametrized("fleet_host", request)
    return ""


@pytest.fixture
def fleet_target(request: pytest.FixtureRequest) -> str:
    """``direct`` or ``proxy`` (parametrised by --target)."""
    _not_parametrized("fleet_target", request)
    return ""


@pytest.fixture
def fleet_alias(request: pytest.FixtureRequest) -> Alias:
    """A proxy alias of a selected host (parametrised, ids are the alias names)."""
    _not_parametrized("fleet_alias", request)
    raise AssertionError("unreachable")


def _fail_on_fleet_error(call: Callable[[], FleetClient]) -> FleetClient:
    try:
        return call()
    except FleetError as exc:
        pytest.fail(f"vllmfleet: {exc}", pytrace=False)


@pytest.fixture
def host_client(fleet: Fleet) -> Callable[[str], FleetClient]:
    """``host_client("wintermute")``: the direct client of any vLLM host by name."""
    def get(name: str) -> FleetClient:
        return _fail_on_fleet_error(lambda: fleet.client(name))

    return get


@pytest.fixture
def proxy_client(fleet: Fleet) -> FleetClient:
    """The LiteLLM proxy's client, authenticated with the master key."""
    return _fail_on_fleet_error(lambda: fleet.proxy)


@pytest.fixture
def prompt_builder(fleet: Fleet) -> Callable[[str], PromptBuilder]:
    """``prompt_builder("wintermute")``: exact-size prompts counted by that host's /tokenize."""
    return fleet.prompts


@pytest.fixture
def context_limit_settings(request: pytest.FixtureRequest) -> markers.ContextLimit:
    """The test's ``context_limit`` marker arguments (defaults when unmarked)."""
    return markers.settings_of(request.node, "context_limit", markers.ContextLimit)


@pytest.fixture
def burst_settings(request: pytest.FixtureRequest) -> markers.Burst:
    """The test's ``burst`` marker arguments (defaults when unmarked)."""
    return markers.settings_of(request.node, "burst", markers.Burst)


@pytest.fixture
def capacity_settings(request: pytest.FixtureRequest) -> markers.Capacity:
    """The test's ``capacity`` marker arguments (defaults when unmarked)."""
    return markers.settings_of(request.node, "capacity", markers.Capacity)


@pytest.fixture
def fleet_artifacts(request: pytest.FixtureRequest) -> Path:
    """The folder the session's reports go to (``--artifacts-dir``)."""
    return state_of(request.config).settings.artifacts_dir


_BENCHMARK_OPTIONS = ("benchmark_save", "benchmark_autosave", "benchmark_compare",
                      "benchmark_json")


@pytest.fixture
def fleet_benchmark(request: pytest.FixtureRequest) -> object | None:
    """pytest-benchmark's ``benchmark`` when the run saves or compares benchmarks, else None.

    With ``--benchmark-autosave`` (or ``--benchmark-save``/``--benchmark-json``) the context
    suite times its samples through ``benchmark.pedantic`` so that a later run can compare
    latencies with ``--benchmark-compare``; a plain run does not involve pytest-benchmark.
    """
    config = request.config
    if not config.pluginmanager.has_plugin("benchmark"):
        return None
    if not any(config.getoption(name, None) for name in _BENCHMARK_OPTIONS):
        return None
    benchmark: object = request.getfixturevalue("benchmark")
    return benchmark


class Recorder:
    """Adds a test's requests to the session report (CSV, JSON, terminal table)."""

    def __init__(self, report: Report, test_id: str) -> None:
        self._report = report
        self.test_id = test_id

    def add(self, suite: str, results: Sequence[Result], *, host: str, target: str,
            model: str, max_input_tokens: int | None = None, label: str = "",
            run: LoadRun | None = None) -> None:
        """Record ``results``; ``label`` says in a few words what was sent."""
        self._report.add(suite=suite, test_id=self.test_id, host=host, target=target,
                         model=model, results=results, max_input_tokens=max_input_tokens,
                         label=label, run=run)


@pytest.fixture
def fleet_report(request: pytest.FixtureRequest) -> Recorder:
    """Record this test's requests in the session's reports."""
    return Recorder(state_of(request.config).report, request.node.nodeid)


# -- reports -----------------------------------------------------------------------------
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = state_of(session.config)
    if state.early is not None:
        state.early.discard()  # started for the suites, but no test took it
    if not state.report.groups:
        return
    s = state.settings
    state.written = state.report.write(
        s.artifacts_dir, generated_at=dt.datetime.now(dt.UTC).isoformat(),
        fleet=s.mode, inventory=str(s.inventory), hosts=list(state.hosts),
        targets=list(s.targets), exit_status=int(exitstatus))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    state = state_of(terminalreporter.config)
    if not state.report.groups:
        return
    terminalreporter.write_sep("-", "vllmfleet acceptance summary")
    for line in state.report.table().splitlines():
        terminalreporter.write_line(line)
    for path in state.written:
        terminalreporter.write_line(f"report: {path}")
    if state.fleet is not None and state.fleet.logs:
        terminalreporter.write_line(f"local fleet logs: {state.fleet.logs}")
