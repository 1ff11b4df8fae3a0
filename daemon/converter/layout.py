"""Where nodes go inside each output: slots and the relative order of dependencies.

R-TOP-8 (a counter per output file; re-placing a name replaces node and slot), R-TOP-9
(dependencies of a merged class, ordered against its parent), R-TOP-10 (dependencies of an
unmerged class: pulled parent names first), R-TOP-11 (pinned names first) and the
breadth-first class closure of R-TOP-4.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from daemon.converter.inventory import TopNode

# R-TOP-11: these open the body, in this order, whenever they are emitted.
PINNED_SLOTS = {"logger": -3.0, "_CHECKPOINT_FOR_DOC": -2.0, "_CONFIG_FOR_DOC": -1.0}


@dataclass
class OutputFile:
    """The nodes placed so far in one output file, with their slots (R-TOP-8)."""

    kind: str
    nodes: dict[str, TopNode] = field(default_factory=dict)
    slots: dict[str, float] = field(default_factory=dict)
    counter: int = 0

    def place(self, name: str, node: TopNode) -> None:
        """Give ``name`` the next slot (or its pinned one), replacing an earlier placement."""
        slot = PINNED_SLOTS.get(name, float(self.counter))
        self.counter += 1
        self.nodes[name] = node
        self.slots[name] = slot

    def ordered(self) -> list[tuple[str, TopNode]]:
        """The file body: nodes sorted by slot."""
        names = sorted(self.nodes, key=lambda name: self.slots[name])
        return [(name, self.nodes[name]) for name in names]


def by_position(names: Iterable[str], positions: Mapping[str, int]) -> list[str]:
    """Sort by position; names without one come after, in reverse alphabetical order."""
    names = list(names)
    known = sorted((n for n in names if n in positions), key=lambda n: positions[n])
    missing = sorted((n for n in names if n not in positions), reverse=True)
    return known + missing


def class_closure(
    initial: Iterable[str], class_map: Mapping[str, Collection[str]], placed: Collection[str]
) -> set[str]:
    """R-TOP-4 step 4: breadth-first closure; placed names are neither re-added nor expanded."""
    checked = set(placed)
    found: set[str] = set()
    queue = deque(initial)
    while queue:
        current = queue.popleft()
        if current in checked:
            continue
        checked.add(current)
        found.add(current)
        queue.extend(class_map.get(current, ()))
    return found


def order_parent_dependencies(
    missing: Collection[str],
    *,
    parent_positions: Mapping[str, int],
    modular_positions: Mapping[str, int],
    parent_classes: Collection[str],
    class_map: Mapping[str, Collection[str]],
) -> list[str]:
    """R-TOP-9: the order of a merged class's missing dependencies."""
    ordered: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            ordered.append(name)

    classes = by_position((n for n in missing if n in parent_classes), parent_positions)
    for klass in classes:
        own = [d for d in class_map.get(klass, ()) if d in missing and d not in seen]
        for name in by_position((d for d in own if d in parent_positions), parent_positions):
            add(name)
        others = (d for d in own if d not in parent_positions)
        for name in by_position(others, modular_positions):
            add(name)
        add(klass)
    rest = [n for n in missing if n not in seen]
    for name in by_position((n for n in rest if n not in modular_positions), parent_positions):
        add(name)
    for name in by_position((n for n in rest if n in modular_positions), modular_positions):
        add(name)
    return ordered


def order_modular_dependencies(
    missing: Collection[str],
    *,
    modular_positions: Mapping[str, int],
    pulled_from: Mapping[str, str],
    parent_positions: Mapping[str, Mapping[str, int]],
) -> list[str]:
    """R-TOP-10: pulled parent names grouped by parent, then the modular's own names.

    Args:
        missing: the dependencies to order.
        modular_positions: positions in the modular file.
        pulled_from: for names pulled in by R-PAR-6, the parent module they come from.
        parent_positions: positions per parent module.
    """
    pulled = sorted(n for n in missing if n in pulled_from)
    groups = list(dict.fromkeys(pulled_from[n] for n in pulled))  # alphabetical first sight
    ordered: list[str] = []
    for group in groups:
        members = (n for n in pulled if pulled_from[n] == group)
        ordered += by_position(members, parent_positions.get(group, {}))
    own = (n for n in missing if n not in pulled_from)
    return ordered + by_position(own, modular_positions)
