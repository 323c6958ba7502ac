"""validate, plan, render: everything that runs before anything touches a host."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from vllmfleet.inventory import Inventory
from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, pick_hosts, user_errors
from vllmfleet.tasks.files import make_folder
from vllmfleet.tasks.settings import settings, where

_INV = INVENTORY_HELP


_LITELLM = ("also load the rendered proxy config with the LiteLLM installed here "
            "(litellm --validate_config; 10-40 s)")


def _check_with_litellm(inv: Inventory) -> None:
    """Exit 1 when the LiteLLM installed here cannot load the rendered proxy bundle."""
    import vllmfleet.render as renderer
    from vllmfleet.deploy.litellm_check import validate_locally

    with user_errors():
        bundle = renderer.render_proxy(inv)
    names = [(Path(f.relpath).name, f.content) for f in bundle]
    problems = validate_locally(names, config_name=names[0][0])
    if problems:
        raise Exit("\n".join(f"error: {p}" for p in problems), code=1)
    print(f"{inv.proxy.config_path}: LiteLLM here loads the rendered proxy config")


@task(help={"inventory": _INV, "litellm": _LITELLM})
def validate(c: Context, inventory: str | None = None, litellm: bool = False) -> None:
    """Check the inventory: types, references, limits against vLLM and the GPUs."""
    from vllmfleet.inventory.problems import format_problems

    inv = load_inventory(c, inventory)
    if inv.warnings:
        print(format_problems(inv.warnings, color=sys.stdout.isatty()))
    print(f"{inv.path}: valid: {len(inv.hosts)} hosts ({len(inv.vllm_hosts)} vLLM), "
          f"{len(inv.aliases)} aliases, {len(inv.models)} models, "
          f"{len(inv.warnings)} warning(s)")
    if litellm:
        _check_with_litellm(inv)


@task(help={"inventory": _INV, "host": "only these vLLM hosts (comma-separated)",
            "json": "print JSON instead of the table"})
def plan(c: Context, inventory: str | None = None, host: str | None = None,
         json: bool = False) -> None:
    """Predict whether each host's vLLM config fits its GPU (weights, KV cache, headroom)."""
    from json import dumps, loads

    from vllmfleet.deploy.measured import last_comparable
    from vllmfleet.inventory.cpu_plan import as_json, cpu_plan
    from vllmfleet.inventory.plan import plan as capacity_plan
    from vllmfleet.vllm.capacity_report import format_table, to_json

    inv = load_inventory(c, inventory)
    picked = pick_hosts(inv, host, vllm_only=True)
    cpu = [name for name in picked if inv.hosts[name].cpu is not None]
    store = settings(c).backups_dir
    with user_errors():
        rows = capacity_plan(inv, [name for name in picked if name not in cpu])
        cpu_rows = [cpu_plan(inv, name) for name in cpu]
        measured = {name: m for name, report in rows
                    if (m := last_comparable(store, inv.hosts[name], report.input))}
    if json:
        data = loads(to_json(rows, measured))
        data["hosts"] += [as_json(row) for row in cpu_rows]
        print(dumps(data, indent=2))
    else:
        if rows or not cpu_rows:
            print(format_table(rows, measured))
        for row in cpu_rows:  # what can and cannot be predicted without a GPU
            print("\n".join(row.lines()))
    misfits = [name for name, report in rows if not report.fits]
    misfits += [row.host for row in cpu_rows if row.fits is False]
    if misfits:
        raise Exit(f"does not fit: {', '.join(misfits)} (see above for the largest settings "
                   "that fit)", code=1)


@task(help={"inventory": _INV, "out": "output folder (default: <build_dir>/rendered)",
            "host": "only these hosts (comma-separated)", "litellm": _LITELLM})
def render(c: Context, inventory: str | None = None, out: str | None = None,
           host: str | None = None, litellm: bool = False) -> None:
    """Render every config file of the fleet (vLLM launch, LiteLLM config, systemd unit)."""
    import vllmfleet.render as renderer

    inv = load_inventory(c, inventory)
    out_dir = _render_folder(c, out)
    with user_errors():
        files = [f for name in pick_hosts(inv, host) for f in renderer.render_host(inv, name)]
        try:
            written = renderer.write(files, out_dir)
        except OSError as exc:  # a file where a host's folder goes, a full disk …
            raise Exit(f"error: cannot write the rendered files under {out_dir}: "
                       f"{exc.strerror or exc}: {exc.filename}; remove what is in the way or "
                       "pass another --out", code=1) from None
    for f, path in zip(files, written, strict=True):
        print(f"{f.host:<12} {f.kind:<17} {path}  ->  {f.remote_path}")
    print(f"{len(written)} files in {out_dir}")
    if litellm:
        _check_with_litellm(inv)


def _render_folder(c: Context, out: str | None) -> Path:
    """``--out``, else ``render_dir``, else ``<build_dir>/rendered``: created, or exit 2
    naming the value and where it came from."""
    config = settings(c)
    if out:
        return make_folder(Path(out).expanduser(), named=f"--out {out}")
    if config.render_dir is not None:
        return make_folder(config.render_dir, named=where(c, "render_dir"))
    return make_folder(config.build_dir / "rendered", named=where(c, "build_dir"))
