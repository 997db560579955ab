"""The MIMIC-IT release format: ids, JSON streaming, Parquet, image files, export, validate, convert, view."""
