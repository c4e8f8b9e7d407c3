"""runtime-tools."""

__all__: list[str] = []
