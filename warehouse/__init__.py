"""Warehouse: table schemas, versioned Delta tables, manifests and reports."""
