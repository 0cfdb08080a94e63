"""The package version (one place; read by the package, the command line and the report)."""

__version__ = "1.0.0"
