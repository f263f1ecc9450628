"""Metrics: the catalog of names (catalog.py), counting in pure code (tally.py), Redis storage (store.py)."""
