"""The ``valueflow`` command line: a thin layer over the library."""

from valueflow.cli._main import cli, main

__all__ = ["cli", "main"]
