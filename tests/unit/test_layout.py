"""The library's shape: the public API, the host-adapter boundary and the import contracts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vllmfleet

LIB = Path(vllmfleet.__file__).parent
ADAPTERS = {"HostAdapter", "PosixAdapter", "LinuxAdapter", "WSLAdapter", "WindowsAdapter",
            "LocalAdapter"}


def test_the_public_api_is_what_all_says_and_every_name_resolves() -> None:
    assert set(vllmfleet.__all__) - {"__version__"} == set(vllmfleet._API)
    for name in vllmfleet.__all__:
        assert getattr(vllmfleet, name) is not None, name


def test_importing_the_package_loads_nothing_else() -> None:
    """`python -m vllmfleet.emulator` must not pay for SSH or HTTP libraries."""
    code = ("import sys, vllmfleet; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('vllmfleet', 'fabric', 'paramiko', 'httpx', 'yaml')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['vllmfleet']"


def _isinstance_of_adapter(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)} \
                if len(node.args) == 2 else set()
            if names & ADAPTERS:
                lines.append(node.lineno)
    return lines


def test_no_module_outside_remote_tests_an_adapters_class() -> None:
    """Callers use HostAdapter's operations; a new platform is a new module in remote/."""
    offenders = []
    for path in sorted(LIB.rglob("*.py")):
        if path.relative_to(LIB).parts[0] == "remote":
            continue
        for line in _isinstance_of_adapter(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(LIB)}:{line}")
    assert offenders == []


def test_the_adapter_check_sees_a_planted_isinstance() -> None:
    planted = ast.parse("def f(a):\n    return isinstance(a, (LocalAdapter, int))\n")
    assert _isinstance_of_adapter(planted) == [2]


def test_the_import_contracts_hold() -> None:
    """The layering (pyproject [tool.importlinter]); ./dev test runs lint-imports too."""
    root = LIB.parents[1]
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
