"""Treatment protocols shipped with aftercal, as TOML data files (schema: SCHEMA.md)."""
