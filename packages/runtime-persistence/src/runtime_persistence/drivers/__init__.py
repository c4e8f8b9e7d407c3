"""The old import path ``runtime_persistence.drivers``, kept working: the drivers live in
:mod:`runtime_persistence.storage.drivers`. Each submodule here re-exports its driver."""

__all__: list[str] = []
