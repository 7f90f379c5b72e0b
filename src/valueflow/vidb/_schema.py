"""The VIDB tables in the workspace (component ``vidb``)."""

from __future__ import annotations

from valueflow.workspace import Migration, register_migrations

COMPONENT = "vidb"

#: Columns of a VIDB table, in order, as stored and as exported.
VIDB_COLUMNS = [
    "item_id",
    "value",
    "theory",
    "node",
    "text",
    "direction",
    "intensity",
    "uncertainty",
    "n_comparisons",
    "judges",
    "flags",
    "source",
    "provenance",
    "license",
    "dataset",
    "source_kind",
]

#: What kind of source an item comes from: ``import`` (a file the user imported), ``seed``
#: (the bundled seed VIDB), ``build`` (measured by ``vidb build`` with real judges) or
#: ``simulation`` (built with simulated judges: a plan, not a measurement, never used as
#: anchors or refit data unless asked for by name).
SOURCE_KINDS = ("import", "seed", "build", "simulation")

register_migrations(
    COMPONENT,
    [
        Migration(
            1,
            """
            CREATE TABLE IF NOT EXISTS vidb_items (
                item_id VARCHAR PRIMARY KEY,
                value VARCHAR NOT NULL,
                theory VARCHAR NOT NULL,
                node VARCHAR,
                text VARCHAR NOT NULL,
                direction VARCHAR NOT NULL,
                intensity DOUBLE NOT NULL,
                uncertainty DOUBLE,
                n_comparisons INTEGER,
                judges VARCHAR,
                flags VARCHAR,
                source VARCHAR,
                provenance VARCHAR,
                license VARCHAR,
                dataset VARCHAR,
                created_at TIMESTAMP DEFAULT current_timestamp
            );
            CREATE INDEX IF NOT EXISTS vidb_items_value ON vidb_items (value)
            """,
            "VIDB items: text, value, calibrated intensity and provenance",
        ),
        Migration(
            2,
            """
            ALTER TABLE vidb_items ADD COLUMN IF NOT EXISTS source_kind VARCHAR;
            UPDATE vidb_items SET source_kind = CASE
                WHEN provenance LIKE 'valueflow vidb build%' AND judges LIKE '%sim(beta=%'
                    THEN 'simulation'
                WHEN provenance LIKE 'valueflow vidb build%' THEN 'build'
                WHEN source = 'valueflow-seed' THEN 'seed'
                ELSE 'import' END
            """,
            "source kind of each item: import, seed, build or simulation",
        ),
    ],
)
