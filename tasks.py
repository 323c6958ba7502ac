"""vllmfleet tasks: `inv --list` shows them. Only assembly here; logic lives in lib/vllmfleet."""

from __future__ import annotations

from pathlib import Path

from invoke.collection import Collection

from vllmfleet.tasks import backups, bench, checks, deploy, fit, fleet, health, logs, rollback
from vllmfleet.tasks.files import check_config_files
from vllmfleet.tasks.settings import cli_runtime_path, config_defaults

ROOT = Path(__file__).parent
# a broken invoke.yaml (or ~/.invoke.yaml, -f file) exits naming the file, before invoke's own
# loader stops on it with a traceback
check_config_files(ROOT, runtime_path=cli_runtime_path())
# deploy.<host>, rollback.<host>, logs.<host>: one per host of the inventory (none when the
# inventory does not load; `inv validate` says why)
HOSTS = deploy.hosts_at_import(ROOT)
# fit.<host>, bench.<host>: the vLLM hosts only
VLLM_HOSTS = deploy.hosts_at_import(ROOT, vllm_only=True)

ns = Collection()
ns.add_task(checks.validate)
ns.add_task(checks.plan)
ns.add_task(checks.render)
ns.add_collection(Collection.from_module(fleet))
ns.add_collection(deploy.collection(HOSTS))
ns.add_collection(rollback.collection(HOSTS))
ns.add_collection(fit.collection(VLLM_HOSTS))
ns.add_collection(Collection.from_module(backups))
ns.add_task(health.health)
ns.add_collection(logs.collection(HOSTS))
ns.add_collection(bench.collection(VLLM_HOSTS))
# every vllmfleet.* setting's default (paths relative to this folder, so `inv` works from any
# folder of the checkout); invoke.yaml, INVOKE_VLLMFLEET_* and `inv -f` override them
ns.configure({"vllmfleet": config_defaults(ROOT)})
