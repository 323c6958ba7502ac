"""Options: CLI > environment > ini > default, errors that name the source, the header."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HEADER = "vllmfleet: fleet=local, inventory=*configs/fleet.yaml, targets=direct+proxy, " \
         "hosts=wintermute, armitage"


def test_header_shows_fleet_inventory_targets_and_hosts(pytester: pytest.Pytester,
                                                         project: Path) -> None:
    result = pytester.runpytest_subprocess("--co")
    result.stdout.fnmatch_lines([HEADER])


def test_command_line_beats_environment_beats_ini(pytester: pytest.Pytester, project: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nvllmfleet_target = proxy\nvllmfleet_host = armitage\n")
    pytester.runpytest_subprocess("--co").stdout.fnmatch_lines(
        ["vllmfleet: fleet=local, *, targets=proxy, hosts=armitage"])
    monkeypatch.setenv("VLLMFLEET_TARGET", "direct")
    monkeypatch.setenv("VLLMFLEET_FLEET", "inventory")
    pytester.runpytest_subprocess("--co").stdout.fnmatch_lines(
        ["vllmfleet: fleet=inventory, *, targets=direct, hosts=armitage"])
    pytester.runpytest_subprocess("--co", "--target=both", "--host", "wintermute",
                                  "--host", "armitage").stdout.fnmatch_lines(
        ["vllmfleet: fleet=inventory, *, targets=direct+proxy, hosts=wintermute, armitage"])


@pytest.mark.parametrize(("how", "where"), [
    ("cli", "--target=sideways (command line)"),
    ("env", "VLLMFLEET_TARGET=sideways (environment)"),
    ("ini", "vllmfleet_target = sideways (*tox.ini)"),
])
def test_a_bad_value_names_where_it_came_from(pytester: pytest.Pytester, project: Path,
                                              monkeypatch: pytest.MonkeyPatch, how: str,
                                              where: str) -> None:
    args = ["--co"]
    if how == "cli":
        args.append("--target=sideways")
    elif how == "env":
        monkeypatch.setenv("VLLMFLEET_TARGET", "sideways")
    else:
        pytester.makefile(".ini", tox="[pytest]\nvllmfleet_target = sideways\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*vllmfleet: {where}: 'sideways' is not one of direct, "
                                 "proxy, both"])


def test_an_unknown_host_gets_a_did_you_mean(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess("--co", "--host", "armitag")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--host=armitag (command line): 'armitag' is not a vLLM host "
                                 "of *fleet.yaml (vLLM hosts: wintermute, armitage); did you "
                                 "mean 'armitage'?"])


@pytest.mark.parametrize("speed", ["fast", "1e-320", "inf", "nan", "0", "-1", "1e300"])
def test_a_bad_speed_is_a_usage_error(pytester: pytest.Pytester, project: Path,
                                      speed: str) -> None:
    result = pytester.runpytest_subprocess("--co", "--fleet-speed", speed)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--fleet-speed={speed} (command line): give a positive "
                                 "number from 0.001 to 1000*"])


def test_a_missing_inventory_given_explicitly_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--co", "--fleet-config", "nowhere/fleet.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nowhere/fleet.yaml*inventory file not found*"])


def test_without_an_inventory_ordinary_tests_run_and_fleet_tests_say_why(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
        def test_plain():
            pass

        def test_needs_the_fleet(fleet):
            pass
    """)
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines([
        "vllmfleet: fleet suites unavailable: no inventory at *configs/fleet.yaml*",
        "*vllmfleet: no inventory at *configs/fleet.yaml; pass --fleet-config PATH*"])
    result.assert_outcomes(passed=1, errors=1)


def test_an_invalid_inventory_is_reported_when_the_fleet_is_needed(
        pytester: pytest.Pytester, project: Path) -> None:
    inventory = project / "configs" / "fleet.yaml"
    inventory.write_text(inventory.read_text().replace("max_num_seqs: 2", "max_num_seqs: 0"))
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    quiet = pytester.runpytest_subprocess()
    quiet.assert_outcomes(passed=1)  # a broken inventory does not stop unrelated tests
    quiet.stdout.fnmatch_lines(["vllmfleet: fleet suites unavailable: the inventory from "
                                "default (configs/fleet.yaml) is not usable:"])
    loud = pytester.runpytest_subprocess("--host", "wintermute")
    assert loud.ret == pytest.ExitCode.USAGE_ERROR
    loud.stderr.fnmatch_lines(["*fleet.yaml:*max_num_seqs*"])


def test_a_separate_path_value_that_moves_the_rootdir_is_refused(
        pytester: pytest.Pytester, project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("reports")  # no ini file above it
    result = pytester.runpytest_subprocess("--co", "--artifacts-dir", str(outside))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # pytest roots at the common ancestor of the cwd and that "test path"
    result.stderr.fnmatch_lines([f"*pytest took {outside} (the value of --artifacts-dir) for a "
                                 f"test path and chose {outside.parent} as the rootdir*; write "
                                 f"--artifacts-dir={outside}"])
    fine = pytester.runpytest_subprocess("--co", f"--artifacts-dir={outside}")
    fine.stdout.fnmatch_lines([HEADER])


def test_engine_comes_from_cli_env_or_ini_and_shows_in_the_header(
        pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nvllmfleet_engine = vllm\n")
    pytester.runpytest_subprocess("--co").stdout.fnmatch_lines(
        ["vllmfleet: fleet=local, engine=vllm, inventory=*"])
    monkeypatch.setenv("VLLMFLEET_ENGINE", "emulator")
    result = pytester.runpytest_subprocess("--co")
    result.stdout.fnmatch_lines(["vllmfleet: fleet=local, inventory=*"])
    result = pytester.runpytest_subprocess("--co", "--engine=vllm")
    result.stdout.fnmatch_lines(["vllmfleet: fleet=local, engine=vllm, inventory=*"])


def test_a_bad_engine_or_one_without_a_local_fleet_is_a_usage_error(
        pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess("--co", "--engine=vlm")
    result.stderr.fnmatch_lines(["*--engine=vlm (command line): 'vlm' is not one of "
                                 "emulator, vllm; did you mean 'vllm'?*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest_subprocess("--co", "--engine=vllm", "--fleet=inventory")
    result.stderr.fnmatch_lines(["*--engine=vllm (command line): the engine is chosen for "
                                 "the local fleet only*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
