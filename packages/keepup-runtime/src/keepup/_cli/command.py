"""The root command group: every error raised below it ends here, as one line on stderr and the
exit code of its type (see :mod:`keepup._cli.exit_codes`), never as a traceback."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from typer.core import TyperGroup

from keepup._cli.exit_codes import describe, exit_code_for

__all__ = ["KeepupGroup"]


class KeepupGroup(TyperGroup):
    """A typer group that maps errors to exit codes in one place.

    Usage errors (unknown options, missing arguments) keep typer's own message and exit code 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            return super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=standalone_mode,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except (Exception, KeyboardInterrupt) as exc:
            if os.environ.get("KEEPUP_DEBUG"):
                traceback.print_exception(exc, file=sys.stderr)
            sys.stderr.write(describe(exc) + "\n")
            sys.stderr.flush()
            code = int(exit_code_for(exc))
            if standalone_mode:
                sys.exit(code)
            return code
