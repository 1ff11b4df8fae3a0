"""``python -m daemon`` runs the modwatch command line."""

from __future__ import annotations

from daemon.cli import main

if __name__ == "__main__":  # importable without running the command line
    raise SystemExit(main())
