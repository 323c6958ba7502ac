"""A model's architecture: the config.json facts the capacity model needs.

One type for the planner (:class:`vllmfleet.vllm.capacity.CapacityInput` holds one), the
inventory (a ``models:`` entry is an :class:`Architecture` with a name, a Hugging Face repo
and its weights per format) and the emulator (one ``--emulator-<field>`` flag per field).

The field metadata (``ge``, ``help``, ``example``) is what the inventory's schema reads to
check a ``models:`` entry and to word its fixes; it is plain data, so this module imports
nothing from the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _fact(key: str, example: str, *, help: str = "") -> Any:
    """A required positive integer read from config.json (``key``)."""
    return field(metadata={"help": help or f"{key} from config.json", "example": example,
                           "ge": 1})


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """What the model's config.json says about its size (all positive integers)."""

    layers: int = _fact("num_hidden_layers", "32")
    kv_heads: int = _fact("num_key_value_heads", "8")
    head_dim: int = _fact("head_dim", "128", help="hidden_size / num_attention_heads")
    hidden_size: int = _fact("hidden_size", "4096")
    intermediate_size: int = _fact("intermediate_size", "14336")
    vocab_size: int = _fact("vocab_size", "128256")
    max_position_embeddings: int = _fact("max_position_embeddings", "131072")


#: The architecture's field names, in order.
ARCHITECTURE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Architecture))
