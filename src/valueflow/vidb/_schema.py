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
]

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
        )
    ],
)
