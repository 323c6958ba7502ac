"""Changing hosts safely: plan (diff), lock, back up, push, restart, wait healthy, verify, and
roll back by itself.

=========  ========================================================================================
plan       :class:`Desired` files, :class:`Change` (diff) and what the services must report
apply      one host, step by step (:func:`apply`), with :class:`Options` and :class:`Outcome`
run        deploy.<host>, deploy.all, rollback.<host>, snapshots: inventory → adapters → apply
diagnose   why a start failed (log tail + capacity planner → a fix)
locks      the per-host deploy lock, kept on the host
backups    the verified local backup store
=========  ========================================================================================
"""

from __future__ import annotations

from vllmfleet.deploy.apply import Options, Outcome, Say
from vllmfleet.deploy.run import Access, Sudo, deploy_all, deploy_host, rollback_host, summary

__all__ = [
    "Access",
    "Options",
    "Outcome",
    "Say",
    "Sudo",
    "deploy_all",
    "deploy_host",
    "rollback_host",
    "summary",
]
