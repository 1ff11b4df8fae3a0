"""Per-node memo tables: what a conversion stops using is dropped (issue 4's flat RSS)."""

from __future__ import annotations

import libcst as cst

from daemon.converter import memo
from daemon.converter.memo import NodeMemo


def _node(text: str) -> cst.CSTNode:
    return cst.parse_statement(text)


def test_a_node_keeps_its_value_while_conversions_use_it():
    table: NodeMemo[str] = NodeMemo()
    shared = _node("x = 1\n")
    table.put(shared, "x")
    for _ in range(3 * memo.KEEP):
        memo.next_conversion()
        assert table.get(shared) == "x"


def test_a_node_no_conversion_uses_is_dropped_after_keep_conversions():
    table: NodeMemo[str] = NodeMemo()
    table.put(_node("y = 2\n"), "y")
    for _ in range(memo.KEEP - memo.SWEEP_EVERY):
        memo.next_conversion()
    assert len(table) == 1  # recent enough
    for _ in range(2 * memo.SWEEP_EVERY):
        memo.next_conversion()
    assert len(table) == 0


def test_an_equal_but_distinct_node_is_not_a_hit():
    table: NodeMemo[str] = NodeMemo()
    node = _node("z = 3\n")
    table.put(node, "z")
    assert table.get(node.deep_clone()) is None
