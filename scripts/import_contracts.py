"""Contract types for import-linter that it does not ship, loaded through ``contract_types`` in
``.importlinter`` (``lint-imports`` must run from the repository root so this module imports).

``stdlib_only``: the modules of the listed packages import nothing but the standard library and
the package itself. import-linter's ``forbidden`` contract can only forbid packages it is told by
name, so it would miss a new third-party import; this contract needs no list.
"""

from __future__ import annotations

import sys
from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output

__all__ = ["StdlibOnlyContract"]


class StdlibOnlyContract(Contract):
    """Every module of ``modules`` imports only the standard library and its own package.

    Needs ``include_external_packages = True``. A module expression that matches nothing is an
    error, never a silently kept contract."""

    type_name = "stdlib_only"

    modules = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        if str(self.session_options.get("include_external_packages")).lower() != "true":
            raise ValueError("stdlib_only contracts need include_external_packages = True")
        illegal: list[dict[str, Any]] = []
        for expression in self.modules:  # type: ignore[attr-defined]
            pattern = expression.expression
            matched = (
                graph.find_matching_modules(pattern)
                if expression.has_wildcard_expression()
                else ({pattern} if pattern in graph.modules else set())
            )
            if not matched:
                raise ValueError(f"The expression '{pattern}' did not match any modules.")
            for package in sorted(matched):
                members = {package, *graph.find_descendants(package)}
                for module in sorted(members):
                    for imported in sorted(graph.find_modules_directly_imported_by(module)):
                        root = imported.split(".")[0]
                        if imported in members or imported.startswith(package + "."):
                            continue
                        if root in sys.stdlib_module_names:
                            continue
                        lines = tuple(
                            d["line_number"]
                            for d in graph.get_import_details(importer=module, imported=imported)
                        )
                        illegal.append({"importer": module, "imported": imported, "lines": lines})
        return ContractCheck(kept=not illegal, warnings=[], metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["illegal"]:
            where = ", ".join(f"l.{n}" for n in item["lines"]) or "?"
            output.print_error(
                f"{item['importer']} imports {item['imported']}, which is not in the standard library ({where})",
                bold=False,
            )
            output.new_line()
