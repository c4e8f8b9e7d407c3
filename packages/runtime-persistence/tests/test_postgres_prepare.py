"""``prepare=0`` on a PostgreSQL store URL turns psycopg's server-side prepared statements off, as
PgBouncer in transaction mode (before 1.21) needs: a statement run many times is never prepared."""

from __future__ import annotations

from pathlib import Path

from runtime_persistence import open_store
from runtime_persistence.testing import isolated_url


def _prepared_statements(url: str) -> int:
    driver = open_store(url)
    try:
        for i in range(20):  # psycopg prepares a statement on its 5th run by default
            driver.put("ns", f"k{i}", b"v")
            driver.get("ns", f"k{i}")
        with driver._pool.connection() as conn:  # type: ignore[attr-defined]
            row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
            return int(row[0])
    finally:
        driver.destroy()  # type: ignore[attr-defined]
        driver.close()


def test_prepare_0_prepares_nothing_and_the_default_prepares(tmp_path: Path) -> None:
    base = isolated_url("postgres", tmp_path)
    assert _prepared_statements(f"{base}&pool_size=1") > 0
    assert _prepared_statements(f"{isolated_url('postgres', tmp_path)}&pool_size=1&prepare=0") == 0
