"""What a deploy wants: rendered files per service, the diff a dry run prints, and what the
restarted services must report (read from the files themselves)."""

from __future__ import annotations

from typing import get_args

from vllmfleet import render
from vllmfleet.deploy.plan import (
    SERVICE_OF_KIND,
    Change,
    Desired,
    expectations,
    from_render,
    proxy_models,
    services_of,
)
from vllmfleet.inventory import Inventory
from vllmfleet.remote import RemoteFile
from vllmfleet.render import launch_args
from vllmfleet.render.base import Kind


def test_files_are_split_by_service(reference: Inventory) -> None:
    wintermute = from_render(render.render_host(reference, "wintermute"))
    assert [(d.kind, d.service) for d in wintermute] == [("vllm-launch", "vllm")]
    armitage = from_render(render.render_host(reference, "armitage"))
    assert {d.service for d in armitage} == {"vllm"} and len(armitage) == 2
    motoko = from_render(render.render_host(reference, "motoko"))
    assert {d.service for d in motoko} == {"proxy"}
    assert "/etc/litellm/config.yaml" in [d.remote_path for d in motoko]
    assert from_render(render.render_host(reference, "motoko"), ("vllm",)) == []
    assert services_of(wintermute + motoko) == ["vllm", "proxy"]


def test_expectations_come_from_the_files_being_deployed(reference: Inventory) -> None:
    [vllm] = expectations(reference, reference.hosts["wintermute"],
                          from_render(render.render_host(reference, "wintermute")))
    assert (vllm.service, vllm.url, vllm.served_model_name, vllm.max_model_len) == (
        "vllm", "http://wintermute.lan:8000", "llama31-8b-wintermute", 16384)
    assert vllm.timeout_s == 900

    [win] = expectations(reference, reference.hosts["armitage"],
                         from_render(render.render_host(reference, "armitage")))
    assert (win.served_model_name, win.max_model_len) == ("qwen2.5-7b-armitage", 8192)

    [proxy] = expectations(reference, reference.hosts["motoko"],
                           from_render(render.render_host(reference, "motoko")))
    assert proxy.url == "http://motoko.lan:4000" and proxy.timeout_s == 120
    assert set(proxy.models) == {"llama31-8b-wintermute", "llama31-8b-wintermute-burst",
                                 "qwen2.5-7b-armitage", "local/reasoner", "local/chat"}

    # a rollback restores an older file: it is what the server must report, not the inventory
    [old] = from_render(render.render_host(reference, "wintermute"))
    older = Desired(remote_path=old.remote_path, service="vllm", kind=old.kind, mode=0o644,
                    content=(old.content or b"").replace(b"'16384'", b"'12288'"))
    [vllm] = expectations(reference, reference.hosts["wintermute"], [older])
    assert vllm.max_model_len == 12288


def test_launch_args_and_proxy_models_tolerate_garbage() -> None:
    assert launch_args(b"not: [yaml", "vllm-launch") == []
    assert launch_args(b"{}", "windows-config") == []
    assert launch_args(b'{"vllm_args": ["--port", "1"]}', "windows-config") == ["--port", "1"]
    assert proxy_models(b"\xff\xfe") == ()
    assert proxy_models(b"model_list: [{model_name: a}]\nrouter_settings: "
                        b"{model_group_alias: {b: a}}\n") == ("a", "b")


def test_change_and_diff() -> None:
    want = Desired(remote_path="/opt/x.yaml", content=b"a: 2\n", mode=0o644, service="vllm",
                   kind="vllm-launch")
    same = Change(want=want, have=RemoteFile(content=b"a: 2\n", mode=0o644))
    assert not same.changed and same.diff("h") == ""
    mode_only = Change(want=want, have=RemoteFile(content=b"a: 2\n", mode=0o600))
    assert mode_only.changed
    assert mode_only.diff("h") == "mode of h:/opt/x.yaml: 0600 -> 0644\n"
    edited = Change(want=want, have=RemoteFile(content=b"a: 1", mode=0o644))
    assert edited.diff("h").splitlines() == [
        "--- h:/opt/x.yaml (on the host)", "+++ h:/opt/x.yaml (new)", "@@ -1 +1 @@",
        "-a: 1", "\\ No newline at end of file", "+a: 2"]
    new = Change(want=want, have=None)
    assert new.changed and new.diff("h").startswith("--- /dev/null\n+++ h:/opt/x.yaml (new)")
    gone = Desired(remote_path="/opt/x.yaml", content=None, mode=None, service="vllm",
                   kind="restored")
    assert Change(want=gone, have=RemoteFile(content=b"a", mode=0o644)).changed
    assert not Change(want=gone, have=None).changed


def test_every_rendered_kind_belongs_to_a_service() -> None:
    assert set(SERVICE_OF_KIND) == set(get_args(Kind))
    assert {k for k, s in SERVICE_OF_KIND.items() if s == "vllm"} == {
        "vllm-launch", "windows-launcher", "windows-config"}
