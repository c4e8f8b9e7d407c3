# Generated from packages/runtime-persistence/src/runtime_persistence/session/recorder/_async/__init__.py by scripts/gen_sync.py: edit that file and rerun the script.
"""Async sources: the sync twins in ``../_sync/`` are generated from these (scripts/gen_sync.py)."""
