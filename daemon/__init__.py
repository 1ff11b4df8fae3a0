"""modwatch: a git-aware watch daemon for transformers' modular files."""

__version__ = "0.1.0"
