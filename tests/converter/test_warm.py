"""The warm-path shortcuts give exactly what the plain computations they replace give."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest
from libcst.metadata import ImportAssignment

from daemon.converter import imports, inventory
from daemon.converter.assemble import module_code
from daemon.converter.imports import used_import_names
from daemon.converter.inventory import code_of
from daemon.converter.resolve import LazyPositions, import_froms

POOL = """
import torch
import torch.nn.functional as F
import os.path
from typing import Optional
from typing import cast as to_type
from ...utils import is_scipy_available, logging
from .helpers import *
if is_scipy_available():
    from scipy import optimize
    import numpy as np
else:
    optimize = None
"""

NODES = [
    "def f(x: 'torch.Tensor') -> Optional[int]:\n    return F.relu(x)\n",
    "class A(torch.nn.Module):\n    import math\n\n    def g(self):\n        return math.pi\n",
    "def h():\n    from ...image_utils import get_max\n\n    return get_max(os.path.join('a'))\n",
    "def k():\n    np = 1\n\n    def inner():\n        return np\n\n    return inner\n",
    "X = [np for np in range(3)]\n",
    "logger = logging.get_logger(__name__)\n",
    "def star():\n    return helper_from_star()\n",
    "class B:\n    optimize = 1\n\n    def m(self):\n        return optimize\n",
    "def lam():\n    return lambda torch: torch\n",
    # Read off the names (``imports._plainly_used``) or sent to the analysis:
    "def attr_only(self):\n    return self.torch, f(torch=1)\n",
    "def commented():\n    # torch and F, in a comment only\n    return 1\n",
    "def typed(x: Optional[int] = None) -> 'F':\n    return x\n",
    "def shadow(torch):\n    return torch.zeros(1)\n",
    "def loads():\n    return [F.relu(y) for y in torch.ones(2)]\n",
    "def fstr():\n    return f'{Optional} torch'\n",
    "def rebinds():\n    for F in range(2):\n        pass\n    return F\n",
    'def doc():\n    """Takes a torch tensor, see Optional."""\n    return log(\'torch\')\n',
    "def hinted(x):\n    return cast('F', x)\n",
    # Strings: read as annotations under a typing call or subscript, not under other calls.
    "def aliased_cast(x):\n    return to_type('torch.Tensor', x)\n",
    "def message():\n    logger.warning('needs torch and F')\n    return Optional\n",
    "def typing_subscript():\n    return Optional['torch.Tensor']\n",
    "def call_in_subscript():\n    return Optional[g('F')]\n",
    "def key(x):\n    return x['torch'], x.y['F']\n",
    "def annotated(x: g('F')) -> h['torch']:\n    return x\n",
    "def parsed(x: 'torch.Tensor', y: \"Optional['F']\", z: 'g(torch=1)') -> 'x.':\n    return x\n",
    "def undotted(c):\n    return {'F': 'full'}[c], g()('torch')\n",
    # The name a top-level class or function binds does not hide an import of that name.
    "class Optional(torch.nn.Module):\n    def m(self):\n        return Optional\n",
    "def F(x):\n    return x\n",
]
# Nodes the composition must not split: module-level bindings other nodes can see.
GLUED = [
    "def uses_late():\n    return late\n",
    "from .late import late\n",
    "def declares():\n    global glob\n    import glob\n",
    "def reads_glob():\n    return glob.glob('*')\n",
]


def statements(text: str) -> list[cst.SimpleStatementLine | cst.BaseCompoundStatement]:
    return list(cst.parse_module(textwrap.dedent(text).lstrip("\n")).body)


def pool_entries() -> list[imports.PoolEntry]:
    return [e for e in statements(POOL) if isinstance(e, cst.SimpleStatementLine | cst.If)]


def reference_used(module: cst.Module) -> set[str]:
    """The whole-module analysis through ``MetadataWrapper``, as the converter did before."""
    used: set[str] = set()
    for scope in {s for s in imports.scopes_reference(module).values() if s is not None}:
        for assignment in scope.assignments:
            if isinstance(assignment, ImportAssignment) and assignment.references:
                used.add(assignment.name)
    return used


def nodes_of(texts: list[str]) -> list[cst.SimpleStatementLine | cst.BaseCompoundStatement]:
    return [node for text in texts for node in statements(text)]


@pytest.mark.parametrize("count", [0, 1, 3, len(NODES)])
def test_composed_analysis_equals_the_whole_module_analysis(count):
    pool = statements(POOL)
    nodes = nodes_of(NODES[:count])
    expected = reference_used(cst.Module(body=[*pool, *nodes]))

    assert used_import_names(pool, nodes) == expected  # type: ignore[arg-type]
    assert used_import_names(pool, nodes) == expected  # type: ignore[arg-type]  # warm


@pytest.mark.parametrize("index", range(len(GLUED)))
def test_module_level_bindings_fall_back_to_the_whole_module(index):
    pool = statements(POOL)
    nodes = nodes_of([*NODES, *GLUED[: index + 1]])
    expected = reference_used(cst.Module(body=[*pool, *nodes]))

    assert used_import_names(pool, nodes) == expected  # type: ignore[arg-type]


def test_an_edited_node_is_analysed_again():
    pool = statements(POOL)
    before = nodes_of(["def f():\n    return torch\n"])
    after = nodes_of(["def f():\n    return np\n"])

    assert used_import_names(pool, before) == {"torch", "is_scipy_available"}  # type: ignore[arg-type]
    assert used_import_names(pool, after) == {"np", "is_scipy_available"}  # type: ignore[arg-type]


def test_scopes_without_the_wrapper_match_the_wrapper():
    module = cst.Module(body=[*statements(POOL), *nodes_of(NODES), *nodes_of(GLUED)])
    fast = imports._module_scopes(module)
    slow = imports.scopes_reference(module)

    # A string annotation is parsed again by each run, so its nodes differ; all others match.
    common = set(fast) & set(slow)
    assert len(fast) == len(slow)
    assert len(common) > 0.9 * len(slow)
    assert all(type(fast[node]) is type(slow[node]) for node in common)
    assert imports._scope_used(module) == reference_used(module)


def test_code_of_is_cached_per_node_object():
    node = statements("x = ( 1 )\n")[0]

    assert code_of(node) == "x = ( 1 )\n"
    assert code_of(node) is code_of(node)
    assert code_of(node.with_changes()) == "x = ( 1 )\n"


class _AllImportFroms(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[cst.ImportFrom] = []

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.found.append(node)


def test_import_froms_match_a_visitor_in_order():
    module = cst.parse_module(
        textwrap.dedent(
            """
            from a import b
            try:
                from c import d
            except ImportError:
                from e import f
            else:
                from g import h
            finally:
                from i import j
            if x:
                from k import l
            elif y:
                from m import n
            else:
                from o import p
            class C:
                from q import r
                def f(self):
                    with z:
                        from s import t
                    for _ in w:
                        from u import v
                    else:
                        from w import x
                    while q: from y import z
            match v:
                case 1:
                    from aa import bb
            from cc import dd; import ee
            """
        )
    )
    visitor = _AllImportFroms()
    module.visit(visitor)

    found = list(import_froms(module))
    assert len(found) == len(visitor.found) == 15
    assert all(a is b for a, b in zip(found, visitor.found, strict=True))


def test_lazy_positions_resolve_on_demand():
    module = cst.parse_module("import os\n\nfrom a import b\n")
    positions = LazyPositions(module)
    statement = module.body[1]

    assert positions._resolved is None
    assert positions[statement].start.line == 3
    assert positions.get(cst.Name("elsewhere")) is None
    assert len(positions) == len(list(positions))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# a header comment\n\nimport os\n",
        "# only a comment\n",
        "import os\n\n\nclass A:\n    def f(self):\n        return 1\n\n\n# trailing\nx = 1\n",
        "if x:\n\tpass\n",
        "def f():\n    '''doc'''\n    # inner comment\n\n    return (\n        1,\n    )\n",
    ],
)
def test_module_code_matches_libcst_rendering(text):
    parsed = cst.parse_module(text)
    body = [*parsed.body]
    module = cst.Module(
        header=parsed.header, body=body, default_newline="\n", default_indent="    "
    )

    assert module_code(parsed.header, body) == module.code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "def f(x: Optional[int]) -> None:\n    return torch.relu(F.gelu(x))\n",
            {"torch", "F", "Optional"},
        ),
        ("def f(self):\n    return self.torch, g(Optional=1)\n", set()),
        ("def f():\n    # torch\n    return 1\n", set()),
        ('def f():\n    """torch and F."""\n    x = "torch"\n    return x\n', set()),
        ('def f():\n    """Import torch first."""\n    return F.relu(1)\n', {"F"}),
        ("def f():\n    logger.warning('torch or F')\n    return x['torch']\n", set()),
        ("def f():\n    return Optional[g('torch')]\n", {"Optional"}),
        ("def f(x: 'torch.Tensor') -> 'F':\n    return x\n", {"torch", "F"}),
        ("def f(x: \"Optional['torch.Tensor']\"):\n    return x\n", {"Optional", "torch"}),
        ("def f(x: 'np.ndarray | F.T', y: 'g(torch=1)'):\n    return x\n", {"np", "F"}),
        ("def f(x: g('torch')):\n    return x\n", {"torch"}),  # a string anywhere under one
        ("def F(x):\n    return F(x) + torch.ones(1)\n", {"F", "torch"}),  # its own name
        ("class Optional:\n    pass\n", set()),  # binds it, loads it nowhere
    ],
)
def test_plain_loads_are_read_off_without_the_analysis(text, expected):
    pool = pool_entries()
    (node,) = statements(text)
    tokens = set(imports._TOKEN.findall(code_of(node)))
    kept = [e for e in pool if imports._bound_roots(e) & tokens]

    quick = imports._plainly_used(kept, node, tokens)  # type: ignore[arg-type]

    assert quick == expected  # the composed analysis is compared with the reference above


@pytest.mark.parametrize(
    "text",
    [
        "def f(torch):\n    return torch\n",  # a parameter binds the name
        "def f(x: 'torch.'):\n    return x\n",  # a string annotation that does not parse
        "def f(x: 'lambda torch: torch'):\n    return x\n",  # one that binds the name
        "def f(x):\n    return to_type('torch.Tensor', x)\n",  # so is one in typing.cast
        "def f():\n    return Optional['torch.Tensor']\n",  # or a typing subscript
        "def f():\n    import torch\n\n    return torch\n",  # its own import
        "def f():\n    return os.path.join('a')\n",  # a dotted import
        "def f(c):\n    return {'F': 'full'}[c]\n",  # a string under an undotted subscript
        "class A:\n    def torch(self):\n        return torch\n",  # a nested binding
    ],
)
def test_names_that_might_be_bound_go_to_the_analysis(text):
    entries = pool_entries()
    (node,) = statements(text)
    tokens = set(imports._TOKEN.findall(code_of(node)))
    kept = [e for e in entries if imports._bound_roots(e) & tokens]

    assert imports._plainly_used(kept, node, tokens) is None  # type: ignore[arg-type]


NESTED = """
import torch
from .x import y

if is_torch_available():
    import torch.nn as nn
elif is_tf_available():
    import tf
else:
    nn = None

try:
    from .fast import Fast
except ImportError:
    class Fast:
        pass
finally:
    DONE = True

__all__ = ["A"]
X = 1
X[0] = 2
X.a = 3
a, b = 1, 2


class A(B):
    class Inner:
        def method(self):
            class Deep:
                pass

    def f(self):
        if cond:
            import os


def g():
    class Local:
        pass

    return Local


for i in range(2):
    class InLoop:
        pass
else:
    class InElse:
        pass

with ctx:
    def not_top():
        pass

match x:
    case 1:
        class InCase:
            pass

A = 2
"""


@pytest.mark.parametrize("modular", [True, False])
def test_the_statement_walk_inventories_as_the_libcst_visitor_does(modular):
    module = cst.parse_module(NESTED)

    fast = inventory.gather_inventory(module, modular=modular)
    reference = inventory.gather_inventory_reference(module, modular=modular)

    assert list(fast.nodes) == list(reference.nodes)
    assert all(fast.nodes[name] is reference.nodes[name] for name in fast.nodes)
    assert fast.kinds == reference.kinds and fast.positions == reference.positions
    assert [id(n) for n in fast.imports] == [id(n) for n in reference.imports]
    assert [id(n) for n in fast.guarded] == [id(n) for n in reference.guarded]
    assert fast.all_node is reference.all_node and fast.pseudo_of == reference.pseudo_of
    assert {"Inner", "Deep", "Local", "InLoop", "InElse", "InCase", "Fast"} <= set(fast.nodes)
    assert len(fast.guarded) == 2  # the if and its elif


def test_node_types_tell_nodes_from_other_values_as_isinstance_does():
    # The hot walks test ``type(value) in NODE_TYPES``; it must agree with isinstance on every
    # field value of a tree holding most syntax, and know every node class libcst exports.
    module = cst.parse_module(
        NESTED + "lambda x, *a, y=1, **k: (yield from x)\nprint(f'{a!r:>{w}}')\n"
    )
    values: list[object] = [module]
    for node in inventory.descendants(module):
        for name in inventory.child_fields(type(node)):
            value = getattr(node, name)
            values.extend(value if isinstance(value, list | tuple) else [value])
    assert len(values) > 1000
    for value in values:
        assert (type(value) in inventory.NODE_TYPES) == isinstance(value, cst.CSTNode), value
    exported = [getattr(cst, name) for name in dir(cst)]
    node_classes = [c for c in exported if isinstance(c, type) and issubclass(c, cst.CSTNode)]
    assert len(node_classes) >= 200 and set(node_classes) <= inventory.NODE_TYPES
