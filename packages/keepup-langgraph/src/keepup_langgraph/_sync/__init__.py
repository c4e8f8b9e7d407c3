# Generated from packages/keepup-langgraph/src/keepup_langgraph/_async/__init__.py by scripts/gen_sync.py: edit that file and rerun the script.
