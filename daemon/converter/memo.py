"""Per-node memo tables whose entries die with the conversions that stopped using them.

libcst nodes are immutable and a cached parent's nodes are the same objects on every
conversion, so values derived from a node (its code, its identifiers) can be cached by the
node's identity. But libcst nodes take no weak references, so such a cache keeps its nodes
alive, and every save parses a new modular tree: an LRU of a few thousand nodes pinned the
trees of thousands of earlier saves (the 10,000-save soak grew 6-8 MB per 1000 saves).

Here each entry remembers the conversion that last used it; ``next_conversion`` (called once
per conversion by the pipeline) drops, every few conversions, the entries no conversion used
in the last ``KEEP`` ones. What stays is what current conversions read: the nodes of the
parents they share, not the trees of earlier saves.
"""

from __future__ import annotations

import itertools
from typing import Generic, TypeVar

import libcst as cst

V = TypeVar("V")

KEEP = 48  # conversions an unused entry survives: a model and its dependents' wave
SWEEP_EVERY = 8  # conversions between sweeps: a sweep walks every table once

_tables: list[NodeMemo[object]] = []
_counter = itertools.count(1)
_now = [0]


class NodeMemo(Generic[V]):
    """A value per node object, kept while recent conversions use it."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[cst.CSTNode, V, int]] = {}
        _tables.append(self)  # type: ignore[arg-type]

    def get(self, node: cst.CSTNode) -> V | None:
        entry = self._entries.get(id(node))
        if entry is None or entry[0] is not node:
            return None
        if entry[2] != _now[0]:
            self._entries[id(node)] = (node, entry[1], _now[0])
        return entry[1]

    def put(self, node: cst.CSTNode, value: V) -> V:
        # The entry holds the node, so its id cannot be reused by another node meanwhile.
        self._entries[id(node)] = (node, value, _now[0])
        return value

    def sweep(self, oldest: int) -> None:
        """Drop the entries last used before conversion ``oldest``."""
        stale = [key for key, entry in self._entries.items() if entry[2] < oldest]
        for key in stale:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


def next_conversion() -> None:
    """Start a conversion: stamp later uses with it, and sweep now and then."""
    _now[0] = next(_counter)
    if _now[0] % SWEEP_EVERY == 0:
        for table in _tables:
            table.sweep(_now[0] - KEEP)


def sizes() -> list[int]:
    """Entries per table (for the soak's and the tests' view of what is kept)."""
    return [len(table) for table in _tables]
