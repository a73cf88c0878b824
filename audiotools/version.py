"""The package version (one definition; pyproject.toml reads it)."""

__version__ = "0.1.0"
