"""runtime-telemetry."""

__all__: list[str] = []
