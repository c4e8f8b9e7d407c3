"""Async sources: the sync twins in ``../_sync/`` are generated from these (scripts/gen_sync.py)."""
