"""Routing classes to file types, and the two trailer statements of each output.

R-IO-3 (a class goes to the file type of the longest suffix key matching its name once the
child's cased name is deleted), R-TOP-13 (``__getattr__``) and R-TOP-14 (``__all__``).
"""

from __future__ import annotations

import ast

import libcst as cst

from daemon.converter import FILE_TYPES
from daemon.converter.inventory import Inventory

# R-IO-3: routing suffixes; the longest matching key wins.
ROUTES = {
    "Config": "configuration",
    "Tokenizer": "tokenization",
    "Processor": "processing",
    "ProcessorKwargs": "processing",
    "ImagesKwargs": "processing",
    "VideosKwargs": "processing",
    "TextKwargs": "processing",
    "ImageProcessor": "image_processing",
    "ImageProcessorKwargs": "image_processing",
    "ImageProcessorPil": "image_processing_pil",
    "VideoProcessor": "video_processing",
    "VideoProcessorInitKwargs": "video_processing",
    "VideoProcessorKwargs": "video_processing",  # [5.23]
    "FeatureExtractor": "feature_extraction",
}
_ROUTE_KEYS = sorted(ROUTES, key=len, reverse=True)
# The order outputs are reported in; it has no effect on their text.
FILE_ORDER = FILE_TYPES
Trailers = dict[str, list[cst.SimpleStatementLine]]


def route(name: str, cased: str) -> str:
    """R-IO-3: the file type of a class name for a child whose cased name is ``cased``."""
    stripped = name.replace(cased, "") if cased else name
    for key in _ROUTE_KEYS:
        if stripped.endswith(key):
            return ROUTES[key]
    return "modeling"


def gather_trailers(inventory: Inventory, cased: str) -> Trailers:
    """The ``__getattr__`` then ``__all__`` statements each file type ends with (P10)."""
    trailers: Trailers = {}
    if inventory.getattr_node is not None:
        kind, node = getattr_trailer(inventory.getattr_node, cased)
        trailers.setdefault(kind, []).append(node)
    if inventory.all_node is not None:
        for kind, node in all_trailers(inventory.all_node, cased).items():
            trailers.setdefault(kind, []).append(node)
    return trailers


def getattr_trailer(
    node: cst.SimpleStatementLine, cased: str
) -> tuple[str, cst.SimpleStatementLine]:
    """R-TOP-13: routed by its first string key, the comma after the last argument removed.

    Open question 1 of the spec: routing by the first key reproduces all 38 corpus cases.
    """
    assign = node.body[0]
    assert isinstance(assign, cst.Assign)
    value = assign.value
    if isinstance(value, cst.Call) and value.args:
        last = value.args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        value = value.with_changes(args=[*value.args[:-1], last])
        node = node.with_changes(body=[assign.with_changes(value=value)])
    first = next(iter(_strings(assign.value)), None)
    return (route(first, cased) if first is not None else "processing"), node


def all_trailers(node: cst.SimpleStatementLine, cased: str) -> dict[str, cst.SimpleStatementLine]:
    """R-TOP-14: one single-line ``__all__`` per file type with the original string tokens.

    Only a list literal counts; comments and trailing commas inside it are lost, and the
    statement keeps its own leading lines.
    """
    assign = node.body[0]
    assert isinstance(assign, cst.Assign)
    if not isinstance(assign.value, cst.List):
        return {}
    tokens: dict[str, list[str]] = {}
    for element in assign.value.elements:
        if isinstance(element.value, cst.SimpleString):
            value = element.value.evaluated_value
            if isinstance(value, str):
                tokens.setdefault(route(value, cased), []).append(element.value.value)
    rebuilt = {}
    for kind, strings in tokens.items():
        single_line = cst.List([cst.Element(cst.SimpleString(token)) for token in strings])
        rebuilt[kind] = node.with_changes(body=[assign.with_changes(value=single_line)])
    return rebuilt


class GatherStringsVisitor(cst.CSTVisitor):
    """The evaluated plain string literals of a node, in source order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        try:
            value = ast.literal_eval(node.value)
        except (ValueError, SyntaxError):
            return
        if isinstance(value, str):
            self.found.append(value)


def _strings(node: cst.CSTNode) -> list[str]:
    visitor = GatherStringsVisitor()
    node.visit(visitor)
    return visitor.found
