"""A warm conversion (merges and analyses remembered from earlier saves) equals a cold one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks.corpus import fresh_checkout
from daemon.converter import Converted, convert
from daemon.converter.assemble import _MERGES

GEMMA = Path("src/transformers/models/gemma/modular_gemma.py")
COLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from daemon.converter import convert

    root, source = Path(sys.argv[1]), Path(sys.argv[2])
    result = convert(source, root=root, format=True)
    for output in result.outputs:
        sys.stdout.write(f"=== {output.path.name}\\n{output.text}")
    """
)


def _cold(root: Path, source: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", COLD, str(root), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def _warm(root: Path, source: Path) -> str:
    result = convert(source, root=root, format=True)
    assert isinstance(result, Converted), result
    return "".join(f"=== {o.path.name}\n{o.text}" for o in result.outputs)


def test_warm_conversions_after_edits_equal_cold_ones(tmp_path):
    root = fresh_checkout(tmp_path / "co")
    source = root / GEMMA
    text = source.read_text(encoding="utf-8")
    _warm(root, source)
    merges_before = len(_MERGES)

    # A comment above the first class, then a changed line in a merged class's method.
    edits = [
        text.replace("\nclass GemmaConfig(", "\n# an edit above the config\nclass GemmaConfig(", 1),
        text.replace(
            "self.intermediate_size, bias=False)\n        self.down_proj",
            "self.intermediate_size, bias=True)\n        self.down_proj",
            1,
        ),
    ]
    for edited in edits:
        assert edited != text
        source.write_text(edited, encoding="utf-8")
        warm = _warm(root, source)
        assert warm == _cold(root, source)
    assert "self.intermediate_size, bias=True)" in warm
    assert len(_MERGES) >= merges_before > 0  # the unchanged classes' merges were remembered
