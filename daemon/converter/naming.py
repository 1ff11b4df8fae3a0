"""Names: the casing table, rename tables, the replacement algorithm and prefix inference.

Everything here is plain text in, text out; the libcst side of renaming lives in ``rename.py``.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from daemon.errors import ConvertError

_AUTO_DIR = Path("src", "transformers", "models", "auto")
_MAPPINGS_FILE = "auto_mappings.py"
_CONFIGURATION_FILE = "configuration_auto.py"
_TABLE_NAME = "CONFIG_MAPPING_NAMES"
# R-NAME-1 step 3: transformers rebuilds the table with this pair placed first; used only
# when configuration_auto.py has no rebuild statement we can read.
_FIRST_PAIR = ("gpt-sw3", "GPT2Config")

# R-NAME-5 step 1: tokens left alone whatever the table says.
_SKIPPED_TOKENS = frozenset(
    {
        "mamba_ssm",
        "mamba-ssm",
        "use_mambapy",
        "mamba_inner_fn",
        "mamba_selective_state_update",
        "mamba_selective_scan",
        "is_mambapy_available",
        "mamba2_split_conv1d_scan_combined",
        "mamba2_selective_state_update",
        "mamba2_chunk_scan",
    }
)
_UPPERCASE_CHUNK = re.compile(r"[A-Z][^A-Z]*")


@dataclass(frozen=True)
class CasingTable:
    """transformers' ``CONFIG_MAPPING_NAMES``: model type -> config class name, in order (R-NAME-1).

    Attributes:
        pairs: the ``(model type, config class name)`` entries in table order.
    """

    pairs: tuple[tuple[str, str], ...] = ()
    _values: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _keys_by_value: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # R-NAME-1: in the inverse lookup the *last* key of a shared value wins, which is what
        # building a dict in table order gives.
        object.__setattr__(self, "_values", dict(self.pairs))
        object.__setattr__(self, "_keys_by_value", {value: key for key, value in self.pairs})

    def cased(self, lower: str) -> str:
        """The CamelCase form of a lowercase name (R-NAME-2).

        Args:
            lower: a model name such as ``orbit_text``.

        Returns:
            The table value without ``Config`` when the name (or its dashed form) is a key,
            else the title-cased ``_``-separated pieces joined together.
        """
        for key in (lower, lower.replace("_", "-")):
            value = self._values.get(key)
            if value is not None:
                return value.replace("Config", "")
        # R-NAME-2 step 3: str.title() capitalises every run of letters, so a letter after a
        # digit is capitalised too (``kite4v`` -> ``Kite4V``).
        return "".join(piece.title() for piece in lower.split("_"))

    def lowered(self, cased: str) -> str:
        """The lowercase form of a cased name (R-NAME-3).

        Args:
            cased: a CamelCase name such as ``OrbitVision``.

        Returns:
            The table key whose value is ``cased + "Config"``, else the uppercase-initial chunks
            lowercased and joined with ``_`` (characters before the first capital are lost).
        """
        key = self._keys_by_value.get(cased + "Config")
        if key is not None:
            return key
        return "_".join(chunk.lower() for chunk in _UPPERCASE_CHUNK.findall(cased))


def load_casing_table(root: Path) -> CasingTable:
    """Read the casing table of the checkout at ``root`` statically, without importing it.

    R-NAME-1: evaluate the pair list of ``auto_mappings.py``, then follow the top-level
    statements of ``configuration_auto.py`` in order: literal ``CONFIG_MAPPING_NAMES.update``
    calls and the ``OrderedDict(**{"gpt-sw3": ...}, **CONFIG_MAPPING_NAMES)`` rebuild that puts
    ``gpt-sw3`` first (prepended anyway when no such rebuild is found). The result is cached
    per file path and modification time.

    Args:
        root: the repository root (the directory holding ``src/transformers``).

    Returns:
        The table, or an empty one when the checkout has no auto mappings (a user's own repo).

    Raises:
        ConvertError: ``auto_mappings.py`` exists but holds no literal table.
    """
    mappings, configuration = casing_files(root)
    if not mappings.is_file():
        return CasingTable()
    return _load_cached(
        mappings, mappings.stat().st_mtime_ns, configuration, _mtime_or_none(configuration)
    )


def casing_files(root: Path) -> tuple[Path, Path]:
    """The files ``load_casing_table`` reads (what a cached check must watch for changes)."""
    return root / _AUTO_DIR / _MAPPINGS_FILE, root / _AUTO_DIR / _CONFIGURATION_FILE


def _mtime_or_none(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.is_file() else None


@functools.lru_cache(maxsize=8)
def _load_cached(
    mappings: Path, mappings_mtime: int, configuration: Path, configuration_mtime: int | None
) -> CasingTable:
    """Build the table; the mtimes are part of the cache key so an edited checkout is re-read."""
    del mappings_mtime, configuration_mtime  # only there to key the cache
    table = dict(_mapping_pairs(mappings))
    rebuilt = False
    if configuration.is_file():
        for statement in _parse_file(configuration).body:
            update = _literal_update(statement)
            if update is not None:
                table.update(update)
                continue
            merged = _literal_rebuild(statement, table)
            if merged is not None:
                table, rebuilt = merged, True
    if not rebuilt:
        # R-NAME-1 step 3 when the rebuild statement is missing or took a shape we do not read.
        first_key, first_value = _FIRST_PAIR
        table = {first_key: first_value, **{k: v for k, v in table.items() if k != first_key}}
    return CasingTable(tuple(table.items()))


def _parse_file(path: Path) -> ast.Module:
    text = path.read_text(encoding="utf-8")
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as error:
        message = f"cannot read the casing table: {error.msg}"
        raise ConvertError(path, message, line=error.lineno) from error


def _mapping_pairs(path: Path) -> list[tuple[str, str]]:
    """The literal ``(key, value)`` pairs assigned to ``CONFIG_MAPPING_NAMES`` in ``path``."""
    for statement in _parse_file(path).body:
        value = _assigned_value(statement, _TABLE_NAME)
        if value is None:
            continue
        pairs = _first_literal_pairs(value)
        if pairs is not None:
            return pairs
    raise ConvertError(
        path,
        f"no literal {_TABLE_NAME} table found",
        hint="the casing table reader (R-NAME-1) has to follow this file's new shape",
    )


def _assigned_value(statement: ast.stmt, name: str) -> ast.expr | None:
    """The value of a top-level ``name = ...`` or ``name: T = ...``, else None."""
    if isinstance(statement, ast.Assign):
        if any(isinstance(t, ast.Name) and t.id == name for t in statement.targets):
            return statement.value
    elif (
        isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and statement.target.id == name
    ):
        return statement.value
    return None


def _first_literal_pairs(node: ast.expr) -> list[tuple[str, str]] | None:
    """The first list/tuple of string pairs or dict of strings in ``node``, searched depth first.

    The table may be wrapped, for example in ``OrderedDict([...])``; only literals count.
    """
    if isinstance(node, ast.List | ast.Tuple | ast.Dict):
        pairs = _literal_string_pairs(node)
        if pairs is not None:
            return pairs
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            found = _first_literal_pairs(child)
            if found is not None:
                return found
    return None


def _literal_string_pairs(node: ast.expr) -> list[tuple[str, str]] | None:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError):  # not a literal, or an unhashable dict key
        return None
    items = list(value.items()) if isinstance(value, dict) else value
    if not isinstance(items, list | tuple) or not items:
        return None
    if all(_is_string_pair(item) for item in items):
        return [(str(key), str(value)) for key, value in items]
    return None


def _is_string_pair(item: object) -> bool:
    return (
        isinstance(item, tuple | list)
        and len(item) == 2
        and all(isinstance(part, str) for part in item)
    )


def _literal_update(statement: ast.stmt) -> dict[str, str] | None:
    """The literal dict of a top-level ``CONFIG_MAPPING_NAMES.update({...})``, else None."""
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "update"
        and _is_table_name(call.func.value)
        and len(call.args) == 1
        and not call.keywords
    ):
        return None
    pairs = _literal_string_pairs(call.args[0])
    return None if pairs is None else dict(pairs)


def _literal_rebuild(statement: ast.stmt, table: dict[str, str]) -> dict[str, str] | None:
    """A top-level rebuild of the table evaluated on ``table``, else None.

    R-NAME-1 step 3 is ``CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": ...},
    **CONFIG_MAPPING_NAMES)``; only ``**`` arguments that are literal dicts or the table itself
    are understood.
    """
    value = _assigned_value(statement, _TABLE_NAME)
    if not isinstance(value, ast.Call) or value.args or not value.keywords:
        return None
    rebuilt: dict[str, str] = {}
    for keyword in value.keywords:
        if keyword.arg is not None:
            return None
        if _is_table_name(keyword.value):
            rebuilt.update(table)
            continue
        pairs = _literal_string_pairs(keyword.value)
        if pairs is None:
            return None
        rebuilt.update(pairs)
    return rebuilt


def _is_table_name(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == _TABLE_NAME


@dataclass(frozen=True)
class RenameTable:
    """The ordered replacements for renaming one model name into another (R-NAME-4).

    Attributes:
        old: the old lowercase name (``-`` replaced by ``_``).
        new: the new lowercase name (``-`` replaced by ``_``).
        entries: the ordered ``(key, replacement)`` pairs; two or three of them.
        default: the replacement for a case-insensitive match that is not a key (``cased_new``).
    """

    old: str
    new: str
    entries: tuple[tuple[str, str], ...]
    default: str
    _replacements: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: rename_text runs for every identifier, string and comment of a parent.
        keys = [key for key, _ in self.entries if key]
        object.__setattr__(self, "_replacements", dict(self.entries))
        object.__setattr__(self, "_pattern", _matcher(keys) if keys else None)

    @property
    def upper_new(self) -> str:
        """``NEW``: the replacement of the two-entry all-caps special case (R-NAME-5)."""
        return self.new.upper()


def rename_table(old: str, new: str, casing: CasingTable) -> RenameTable:
    """Build the rename table for ``old`` -> ``new`` (R-NAME-4).

    Args:
        old: the lowercase name being replaced, such as a parent model name.
        new: the lowercase name replacing it, such as a rename target.
        casing: the casing table used to case both names.

    Returns:
        ``old -> new``, ``OLD -> NEW``, ``cased_old -> cased_new``; when ``cased_old`` equals
        ``OLD`` the third entry overwrites the second, leaving two.
    """
    old = old.replace("-", "_")
    new = new.replace("-", "_")
    cased_new = casing.cased(new)
    entries: dict[str, str] = {}
    entries[old] = new
    entries[old.upper()] = new.upper()
    entries[casing.cased(old)] = cased_new  # R-NAME-4 step 4: may overwrite the OLD entry
    return RenameTable(old=old, new=new, entries=tuple(entries.items()), default=cased_new)


def _matcher(keys: Sequence[str]) -> re.Pattern[str]:
    """R-NAME-5 step 2: case-insensitive keys in table order, no alphanumeric on the left.

    There is no check on the right; the one following character (newline included) or the end
    of the text is consumed with the match, so a match never starts directly after another.
    """
    alternatives = "|".join(re.escape(key) for key in keys)
    return re.compile(rf"(?<![a-z0-9])({alternatives})(.|\Z)", re.IGNORECASE | re.DOTALL)


def rename_text(text: str, table: RenameTable) -> str:
    """Apply ``table`` to one token of text: an identifier, a string literal or a comment.

    R-NAME-5: skip-listed tokens stay; otherwise every case-insensitive match with no letter or
    digit on its left is replaced by its exact table entry or by the default.

    Args:
        text: the token text (string prefix and quotes included).
        table: the rename table.

    Returns:
        The renamed text.
    """
    pattern = table._pattern
    if pattern is None or text in _SKIPPED_TOKENS or text.strip('"') in _SKIPPED_TOKENS:
        return text
    replacements = table._replacements
    two_entries = len(table.entries) == 2

    def replace(match: re.Match[str]) -> str:
        matched, following = match.group(1), match.group(2)
        if two_entries and matched.isupper() and not following.isalpha():
            # R-NAME-5 two-entry special case: ``NOVA_SIZE`` -> ``ORBIT_SIZE``, not ``Orbit_SIZE``.
            return table.upper_new + following
        return replacements.get(matched, table.default) + following

    return pattern.sub(replace, text)


def common_suffix(a: str, b: str) -> str:
    """The longest common suffix of ``a`` and ``b``, or ``""`` when it is all of either (R-NAME-7).

    Args:
        a: a class name, such as ``OrbitVisionModel``.
        b: another class name, such as ``ZetaModel``.

    Returns:
        ``Model`` for the example; ``""`` for ``OrbitZetaModel`` and ``ZetaModel``.
    """
    length = 0
    for left, right in zip(reversed(a), reversed(b), strict=False):
        if left != right:
            break
        length += 1
    if length in (len(a), len(b)):
        return ""
    return a[len(a) - length :]


def _candidate_prefix(name: str, base: str, default: str, parent_cased: str) -> str:
    """R-NAME-7 steps 1-4: the prefix one class ``name(base)`` suggests."""
    suffix = common_suffix(name, base)
    if suffix and suffix[0].isupper():
        prefix = name.replace(suffix, "")
        if len(prefix) < len(default) and default in name:
            return default
        return prefix
    if name.replace(default, "") == base:
        return default + parent_cased  # the "NewOld" form, e.g. OrbitZeta
    return default


def _most_frequent(prefixes: Sequence[str], default: str) -> str:
    """R-NAME-7: the most frequent prefix; on a tie ``default`` if tied, else the last seen."""
    counts = Counter(prefixes)  # insertion order is first-seen order
    best = max(counts.values())
    tied = [prefix for prefix, count in counts.items() if count == best]
    if default in tied:
        return default
    return tied[-1]


def infer_prefix(
    candidates: Sequence[tuple[str, str]],
    *,
    default: str,
    parent_model: str,
    parent_source: str,
    casing: CasingTable,
) -> tuple[str, list[str]]:
    """Choose the one rename prefix for a parent module (R-NAME-7, warnings R-ERR-8).

    Args:
        candidates: ``(class name C, model-specific base B)`` for each modular class with exactly
            one model-specific base imported from this parent module, in source order.
        default: cased(model name) of the child.
        parent_model: the parent's lowercase model name (its directory, such as ``zeta``).
        parent_source: the parent module's original (not renamed) text, for the collision check.
        casing: the casing table.

    Returns:
        The chosen cased prefix (the caller takes ``casing.lowered`` of it for the rename target)
        and the warnings to report. With no candidates it is ``default``, but R-NAME-7 gives such a
        parent the model name itself as target, which the caller should use instead.
    """
    if not candidates:
        return default, []
    parent_cased = casing.cased(parent_model)
    prefixes = [_candidate_prefix(c, b, default, parent_cased) for c, b in candidates]
    distinct = list(dict.fromkeys(prefixes))
    chosen = distinct[0] if len(distinct) == 1 else _most_frequent(prefixes, default)
    if chosen != default:
        clash = chosen.replace(default, parent_cased)
        if f"\nclass {clash}" in parent_source:
            seen = "the most frequent of several prefixes" if len(distinct) > 1 else "the prefix"
            return default, [
                f"{seen} {chosen!r} for parent {parent_model!r} would collide with its existing "
                f"class {clash}...; using the default prefix {default!r} instead"
            ]
    if len(distinct) > 1:
        counts = ", ".join(f"{prefix} x{n}" for prefix, n in Counter(prefixes).items())
        return chosen, [
            f"several prefixes for parent {parent_model!r} ({counts}); using {chosen!r}"
        ]
    return chosen, []
