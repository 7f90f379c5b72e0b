"""ValueFlow: represent, evaluate and steer the values that language models express.

The top-level package stays light: it imports no model libraries. Sub-packages hold the
public API of each stage:

- :mod:`valueflow.theories` — the four value theories, their hierarchy and lookup.
- :mod:`valueflow.workspace` — the embedded DuckDB database a project writes to.
- :mod:`valueflow.llm` — one async interface over LLM backends, with caching.
- :mod:`valueflow.ranking` — Plackett–Luce fitting and anchored scoring (pure math).
- :mod:`valueflow.vidb` — the value intensity database.
- :mod:`valueflow.evaluate` — scoring texts against VIDB anchors.
- :mod:`valueflow.embed` — HiVES embeddings, the local scorer and value profiles.
- :mod:`valueflow.steer` — steering experiments.
- :mod:`valueflow.analysis` — steerability analysis, plots and reports.
"""

from __future__ import annotations

from valueflow._version import __version__
from valueflow.errors import ValueFlowError

__all__ = ["ValueFlowError", "__version__"]
