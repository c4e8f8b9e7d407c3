"""Fresh, isolated Keepup stores for the ADK service tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_persistence.testing import TestStore, open_test_store

BACKENDS = ["sqlite", "file", "postgres", "redis", "mysql"]


@pytest.fixture(params=BACKENDS)
def adk_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestStore]:
    with open_test_store(request.param, tmp_path) as opened:
        yield opened
