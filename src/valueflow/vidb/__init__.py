"""VIDB: the value intensity database — texts with calibrated intensities per value.

A VIDB is a table with at least ``text``, ``value`` (canonical value id) and ``intensity`` in
[-10, 10]; stored items also carry ``item_id``, ``theory``, ``node``, ``direction``,
``uncertainty``, ``n_comparisons``, ``judges``, ``flags``, ``source``, ``provenance``,
``license`` and ``dataset``.
"""

from valueflow.vidb._frame import direction_of, item_id, normalize_vidb_frame
from valueflow.vidb._schema import VIDB_COLUMNS
from valueflow.vidb._seed import SEED_PROVENANCE, load_seed
from valueflow.vidb._stats import HIST_EDGES, plot_vidb_histograms, vidb_stats
from valueflow.vidb._store import OnConflict, VIDBStore, load_vidb, read_vidb_source

__all__ = [
    "HIST_EDGES",
    "SEED_PROVENANCE",
    "VIDB_COLUMNS",
    "OnConflict",
    "VIDBStore",
    "direction_of",
    "item_id",
    "load_seed",
    "load_vidb",
    "normalize_vidb_frame",
    "plot_vidb_histograms",
    "read_vidb_source",
    "vidb_stats",
]
