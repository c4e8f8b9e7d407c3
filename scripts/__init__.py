"""Repository maintenance scripts (version bumps, facade generation, architecture checks).

Not shipped in any wheel. ``scripts.import_contracts`` is loaded by ``lint-imports`` (run from the
repository root) for the contract types import-linter does not have built in."""
