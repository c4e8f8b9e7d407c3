"""The driver conformance suite over the local drivers: memory, file and SQLite."""

from runtime_persistence.testing import conformance_class

TestLocalConformance = conformance_class("memory", "file", "sqlite")
