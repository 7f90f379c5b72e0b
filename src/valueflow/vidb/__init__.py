"""VIDB: the value intensity database — texts with calibrated intensities per value.

A VIDB is a table with at least ``text``, ``value`` (canonical value id) and ``intensity`` in
[-10, 10]; stored items also carry ``item_id``, ``theory``, ``node``, ``direction``,
``uncertainty``, ``n_comparisons``, ``judges``, ``flags``, ``source``, ``provenance``,
``license``, ``dataset`` and ``source_kind`` (``import``, ``seed``, ``build`` or
``simulation``).
"""

# The build's window designs live in valueflow.ranking (one vocabulary for every design);
# they stay importable from here as before.
from valueflow.vidb._build import (
    BuildConfig,
    BuildResult,
    ValueReport,
    build_vidb,
    build_vidb_async,
)
from valueflow.vidb._build_calibrate import NEUTRAL_ANCHOR_TEXTS, Calibration, calibrate_utilities
from valueflow.vidb._build_categorize import CategoryResult, PanelCategorizer
from valueflow.vidb._build_flags import FLAG_NAMES, FlagThresholds
from valueflow.vidb._build_plan import BuildCost, estimate_build_cost
from valueflow.vidb._categorize import AcceptanceRule
from valueflow.vidb._frame import direction_of, item_id, normalize_vidb_frame
from valueflow.vidb._schema import SOURCE_KINDS, VIDB_COLUMNS
from valueflow.vidb._seed import SEED_PROVENANCE, load_seed, seed_registers
from valueflow.vidb._stats import HIST_EDGES, plot_vidb_histograms, vidb_stats
from valueflow.vidb._store import (
    UNRELIABLE_FLAGS,
    BuildConflict,
    OnConflict,
    VIDBStore,
    load_vidb,
    read_vidb_source,
    usable_items,
)

__all__ = [
    "FLAG_NAMES",
    "HIST_EDGES",
    "NEUTRAL_ANCHOR_TEXTS",
    "SEED_PROVENANCE",
    "SOURCE_KINDS",
    "UNRELIABLE_FLAGS",
    "VIDB_COLUMNS",
    "AcceptanceRule",
    "BuildConfig",
    "BuildConflict",
    "BuildCost",
    "BuildResult",
    "Calibration",
    "CategoryResult",
    "FlagThresholds",
    "OnConflict",
    "PanelCategorizer",
    "VIDBStore",
    "ValueReport",
    "build_vidb",
    "build_vidb_async",
    "calibrate_utilities",
    "direction_of",
    "estimate_build_cost",
    "item_id",
    "load_seed",
    "load_vidb",
    "normalize_vidb_frame",
    "plot_vidb_histograms",
    "read_vidb_source",
    "seed_registers",
    "usable_items",
    "vidb_stats",
]
