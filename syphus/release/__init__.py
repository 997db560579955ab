"""The MIMIC-IT release format: ids, JSON streaming, image files, export, validate, convert, view."""
