# Generated from packages/runtime-persistence/src/runtime_persistence/storage/drivers/_async/__init__.py by scripts/gen_sync.py: edit that file and rerun the script.
"""The server drivers' I/O, written once as async code; ``../_sync/`` holds the generated twins."""
