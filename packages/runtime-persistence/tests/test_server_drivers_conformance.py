"""The driver conformance suite over the server drivers: PostgreSQL, MySQL/MariaDB, Redis and
MongoDB. Each backend runs where its ``KEEPUP_TEST_*_URL`` is set and skips visibly otherwise;
under ``CI=true`` a configured server that does not answer fails."""

from runtime_persistence.testing import conformance_class

TestServerDriverConformance = conformance_class("postgres", "mysql", "redis", "mongodb")
