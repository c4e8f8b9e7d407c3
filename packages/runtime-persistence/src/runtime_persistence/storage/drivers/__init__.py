"""Storage drivers. Each driver lives in its own module and is imported only when its URL scheme is
opened (see :func:`runtime_persistence.open_store`)."""

__all__: list[str] = []
