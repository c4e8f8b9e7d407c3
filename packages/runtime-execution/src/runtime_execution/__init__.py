"""runtime-execution."""

__all__: list[str] = []
