"""The rule that ties a host's vLLM flags to the version its image pins.

The image tag decides the version (``vllm/vllm-openai:v0.11.0`` → 0.11.0). A flag in
``extra_args`` that :data:`vllmfleet.vllm.versions.FACTS` knows and that version lacks is
an error (vLLM would exit at start with "unrecognized arguments"); a tag that names no
version, or a version outside the table, is a warning (flags cannot be checked, the
emulator behaves as the nearest version it knows).
"""

from __future__ import annotations

from vllmfleet.inventory.model import Host
from vllmfleet.inventory.schema import Context
from vllmfleet.vllm.versions import (
    FACTS,
    NEWEST_KNOWN,
    OLDEST_KNOWN,
    facts_for,
    format_version,
    version_of_image,
)


def _flag_args(extra_args: list[str]) -> list[tuple[str, str | None]]:
    """``(flag, value)`` pairs of ``extra_args`` (``--flag value`` or ``--flag=value``)."""
    pairs: list[tuple[str, str | None]] = []
    for i, arg in enumerate(extra_args):
        if not arg.startswith("--"):
            continue
        name, sep, value = arg.partition("=")
        if not sep:
            following = extra_args[i + 1] if i + 1 < len(extra_args) else None
            value = following if following is not None and not following.startswith("--") \
                else ""
        pairs.append((name, value or None))
    return pairs


def check_vllm_version(ctx: Context, host: Host) -> None:
    """Refuse flags the pinned vLLM version lacks; warn when the version is unknown."""
    vllm = host.vllm
    image = getattr(vllm, "image", None) if vllm is not None else None
    if vllm is None or not image:
        return
    vpath = f"hosts.{host.name}.vllm"
    version = version_of_image(image)
    if version is None:
        tag = image.rsplit("/", 1)[-1]
        if ":" in tag and not tag.endswith(":latest"):  # unpinned: the pinning rule says so
            ctx.warning(f"{vpath}.image",
                        f"the tag of {image!r} names no vLLM version, so vllmfleet cannot "
                        "check which flags exist; the emulator behaves as vLLM "
                        f"{format_version(NEWEST_KNOWN)}",
                        "pin a release tag, e.g. vllm/vllm-openai:v"
                        f"{format_version(NEWEST_KNOWN)}")
        return
    shown = format_version(version)
    if not OLDEST_KNOWN <= version <= NEWEST_KNOWN:
        nearest = NEWEST_KNOWN if version > NEWEST_KNOWN else OLDEST_KNOWN
        ctx.warning(f"{vpath}.image",
                    f"vLLM {shown} is outside the versions vllmfleet knows "
                    f"({format_version(OLDEST_KNOWN)} to {format_version(NEWEST_KNOWN)}): "
                    "flags are checked against the nearest, and the emulator behaves as "
                    f"vLLM {format_version(nearest)}",
                    "check this version's flags and messages in its release notes, then "
                    "add them to vllmfleet.vllm.versions.FACTS")
    facts = facts_for(version)
    for flag, value in _flag_args(list(vllm.extra_args)):
        name = f"{flag} auto" if flag == "--max-model-len" and value in ("auto", "-1") \
            else flag
        fact = FACTS.get(name)
        if fact is None or facts.has_flag(name):
            continue
        since = format_version(fact.since)
        ctx.error(f"{vpath}.extra_args",
                  f"{name} does not exist in vLLM {shown} (the version {image!r} pins); it "
                  f"exists from vLLM {since} — source: {fact.source}",
                  f"remove {flag} from extra_args, or pin vllm/vllm-openai:v{since} or later")
