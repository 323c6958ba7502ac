"""Mutation testing (mutmut 3.8.1) of the modules where a silent bug hurts most; `nox -s
mutation` runs it. Prints the score per module and lists the surviving mutants.

    python scripts/mutation.py                 # every target below
    python scripts/mutation.py locks rules     # some of them
    python scripts/mutation.py --list          # the targets and their tests

How it runs mutmut 3 here (facts from mutmut 3.8.1's source, mutmut/utils/file_utils.py and
mutmut/utils/format_utils.py): mutmut imports the mutated code only from ``mutants/``,
``mutants/src`` or ``mutants/source`` and names a mutant after its file path with a leading
``src.`` stripped. The library lives in ``lib/``, so this script stages a copy of the project
in ``build/mutation/<target>`` with ``lib/`` as ``src/``, writes the ``[tool.mutmut]``
section there (source_paths, only_mutate, the target's tests) and runs ``python -m mutmut
run`` in it without PYTHONPATH (which would put the unmutated ``lib/`` first; pointing it
at ``mutants/`` instead breaks mutmut's own import set-up). Tests that run ``inv`` in a
subprocess never see a mutant, so a target deselects them. Each run starts
from no mutmut results (its cache kept a "no tests" verdict after tests were added);
``--keep-cache`` reuses the last run's results of unchanged functions.

Score = (killed + timeout) / (all - skipped), as mutmut's own badge computes it; "no tests"
(no selected test reaches the function) counts as not killed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ROOT / "build" / "mutation"


@dataclass(frozen=True)
class Target:
    """Files to mutate (paths in the stage: ``src/...`` or ``pytest_vllmfleet/...``) and the
    fast tests that guard them (no subprocess ``inv``, no pytester: those never see mutants)."""

    files: tuple[str, ...]
    tests: tuple[str, ...]
    deselect: tuple[str, ...] = ()  # tests that run `inv` in a subprocess


TARGETS: dict[str, Target] = {
    # The hook tests load the module by file under another name, as LiteLLM does
    # (spec_from_file_location("vllmfleet_hooks", ...)); mutmut 3 maps tests to mutants by the
    # imported module's name, so it sees "no tests" here until a test imports
    # vllmfleet.proxy_hooks itself.
    "proxy_hooks": Target(("src/vllmfleet/proxy_hooks.py",),
                          ("tests/unit/test_proxy_hooks.py",
                           "tests/unit/test_proxy_hook_output_fields.py")),
    "rules": Target(("src/vllmfleet/inventory/rules.py", "src/vllmfleet/inventory/names.py"),
                    ("tests/unit/inventory",)),
    "capacity": Target(("src/vllmfleet/vllm/capacity.py",), ("tests/unit/vllm",)),
    "client": Target(("src/vllmfleet/client/http.py",), ("tests/unit/client",)),
    "load": Target(("src/vllmfleet/client/load.py",), ("tests/unit/client",)),
    "markers": Target(("pytest_vllmfleet/markers.py",), ("tests/plugin/test_marker_bounds.py",)),
    "locks": Target(("src/vllmfleet/deploy/locks.py",),
                    ("tests/unit/deploy/test_locks.py", "tests/unit/deploy/test_lock_age.py")),
    "backups": Target(("src/vllmfleet/deploy/backups.py",), ("tests/unit/deploy/test_backups.py",),
                      ("tests/unit/deploy/test_backups.py::"
                       "test_an_unknown_host_is_refused_naming_the_known_ones",
                       "tests/unit/deploy/test_backups.py::test_list_and_verify_read_the_store")),
}

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


def _toml_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def stage(name: str, target: Target, *, keep_cache: bool = False) -> Path:
    """A copy of the project for ``target`` with ``lib/`` as ``src/`` and its mutmut config."""
    folder = STAGES / name
    folder.mkdir(parents=True, exist_ok=True)
    for item in ("src", "tests", "pytest_vllmfleet", "configs", *(() if keep_cache
                                                                  else ("mutants",))):
        shutil.rmtree(folder / item, ignore_errors=True)
    shutil.copytree(ROOT / "lib", folder / "src", ignore=_IGNORE)
    for item in ("tests", "pytest_vllmfleet", "configs"):
        shutil.copytree(ROOT / item, folder / item, ignore=_IGNORE)
    shutil.copy(ROOT / "tasks.py", folder / "tasks.py")
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    config += (
        "\n# written by scripts/mutation.py for this stage only\n[tool.mutmut]\n"
        f'source_paths = ["src", "pytest_vllmfleet"]\n'
        f"only_mutate = {_toml_list(target.files)}\n"
        f'also_copy = ["configs", "tasks.py"]\n'
        "pytest_add_cli_args_test_selection = "
        f"{_toml_list([*target.tests, *(a for t in target.deselect for a in ('--deselect', t))])}\n"
        f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n')
    (folder / "pyproject.toml").write_text(config, encoding="utf-8")
    return folder


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no price-map download when litellm loads
    return env


def results(folder: Path) -> tuple[Counter[str], list[str]]:
    """The count of mutants per status (killed, survived …) of the last run in ``folder``, and
    the survivors (survived or no tests)."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         cwd=folder, env=_env(folder), check=True, capture_output=True,
                         text=True).stdout
    counts: Counter[str] = Counter()
    survivors = []
    for line in out.splitlines():
        match = re.fullmatch(r"\s*(\S+): (.+)", line)
        if match:
            counts[match.group(2)] += 1
            if match.group(2) in ("survived", "no tests"):
                survivors.append(f"{match.group(1)}: {match.group(2)}")
    return counts, survivors


def run(name: str, target: Target, *, max_children: int,
        keep_cache: bool = False) -> Counter[str]:
    """Run mutmut on ``target``; the count of mutants per status (killed, survived …)."""
    folder = stage(name, target, keep_cache=keep_cache)
    print(f"== {name}: {', '.join(target.files)} (tests: {' '.join(target.tests)})", flush=True)
    done = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                           str(max_children)], cwd=folder, env=_env(folder),
                          capture_output=True, text=True)
    if done.returncode != 0:  # e.g. a selected test fails on the unmutated code
        tail = (done.stdout + done.stderr).replace("\r", "\n").splitlines()[-15:]
        print("   mutmut failed:\n" + "\n".join(f"   | {line}" for line in tail), flush=True)
        return Counter({"error": 1})
    counts, survivors = results(folder)
    for line in survivors:
        print(f"   {line}   (python -m mutmut show {line.split(':')[0]} in {folder})")
    return counts


def score(counts: Counter[str]) -> float:
    tested = sum(counts.values()) - counts["skipped"] - counts["error"]
    return 0.0 if tested <= 0 else 100 * (counts["killed"] + counts["timeout"]) / tested


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mutation testing (mutmut) with a score per "
                                     "module; see the module docstring.")
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"some of: {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the targets and stop")
    parser.add_argument("--max-children", type=int, default=2,
                        help="mutants tested at once (default 2)")
    parser.add_argument("--report", action="store_true",
                        help="only print the scores of the last runs (no mutmut run)")
    parser.add_argument("--keep-cache", action="store_true",
                        help="reuse the last run's results of unchanged functions")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name:<12} {' '.join(target.files)}  <-  {' '.join(target.tests)}")
        return 0
    rows = []
    for name in args.targets or list(TARGETS):
        if args.report:
            counts = results(STAGES / name)[0] if (STAGES / name / "mutants").is_dir() \
                else Counter({"error": 1})
        else:
            counts = run(name, TARGETS[name], max_children=args.max_children,
                         keep_cache=args.keep_cache)
        rows.append((name, counts))
    print(f"\n{'TARGET':<12} {'SCORE':>6} {'KILLED':>7} {'SURVIVED':>9} {'NO TESTS':>9} "
          f"{'TIMEOUT':>8} {'ALL':>5}")
    for name, counts in rows:
        if counts["error"]:
            print(f"{name:<12}  ERROR (see above)")
            continue
        print(f"{name:<12} {score(counts):5.1f}% {counts['killed']:>7} {counts['survived']:>9} "
              f"{counts['no tests']:>9} {counts['timeout']:>8} {sum(counts.values()):>5}")
    return 1 if any(counts["error"] for _, counts in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
