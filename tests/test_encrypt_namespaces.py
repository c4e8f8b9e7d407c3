"""``keepup store encrypt`` must reach every namespace Keepup writes records to: a namespace
added anywhere in the packages (an ``X_NS = "..."`` constant) must be in ``RECORD_NAMESPACES``,
or listed with its reason in ``UNENCRYPTED_NAMESPACES``; else it would silently stay in
plaintext."""

from __future__ import annotations

import ast
from pathlib import Path

from runtime_persistence.encryption import RECORD_NAMESPACES, UNENCRYPTED_NAMESPACES

ROOT = Path(__file__).resolve().parent.parent
NOT_RECORDS = {
    "ckpt.blob",  # content-addressed checkpoint blobs: encrypt_store handles them apart
    "keepup.restore",  # the marker of a backup restore under way: written and removed by the restore
}


def _declared() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in ROOT.glob("packages/*/src/**/*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, (ast.Assign, ast.AnnAssign))
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id.endswith("_NS"):
                        found[node.value.value] = f"{path.relative_to(ROOT)}:{target.id}"
    return found


def test_every_record_namespace_is_encrypted() -> None:
    declared = _declared()
    assert len(declared) > 30 and "adk.session" in declared  # the scan sees the adapters too
    known = {*RECORD_NAMESPACES, *NOT_RECORDS, *UNENCRYPTED_NAMESPACES}
    missing = {ns: where for ns, where in declared.items() if ns not in known}
    assert all(UNENCRYPTED_NAMESPACES.values())  # each exception says why
    assert not missing, f"namespaces store encrypt would leave in plaintext: {missing}"
