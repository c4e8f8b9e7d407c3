"""Opening stores by URL: built-in schemes, the entry-point group, and missing driver libraries
that name an extra which really exists in runtime-persistence's metadata."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import metadata
from pathlib import Path

import pytest
from runtime_core import DriverUnavailableError, Durability, Entry, ValidationError
from runtime_persistence.storage.drivers.file import FileDriver
from runtime_persistence.storage.drivers.memory import MemoryDriver
from runtime_persistence.storage.drivers.sqlite import SqliteDriver, sqlite_url
from runtime_persistence.storage.stores import BUILTIN_SCHEMES, open_store, redact_url


def declared_extras() -> set[str]:
    return set(metadata("runtime-persistence").get_all("Provides-Extra") or [])


def test_every_extra_named_by_a_driver_exists_in_the_package_metadata() -> None:
    named = {spec.extra for spec in BUILTIN_SCHEMES.values() if spec.extra is not None}
    assert named == {"postgres", "mysql", "redis", "mongodb"}
    assert named <= declared_extras()


def test_the_serialization_extras_exist_in_the_package_metadata() -> None:
    assert {"zstd", "crypto"} <= declared_extras()


@pytest.mark.parametrize(
    ("url", "library", "extra"),
    [
        ("postgresql://localhost/db", "psycopg", "postgres"),
        ("mysql://root@localhost/db", "pymysql", "mysql"),
        ("redis://localhost:6379/0", "redis", "redis"),
        ("mongodb://localhost/db", "pymongo", "mongodb"),
    ],
)
def test_a_missing_driver_library_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, url: str, library: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, library, None)
    with pytest.raises(DriverUnavailableError) as info:
        open_store(url)
    assert info.value.extra == extra
    assert f"runtime-persistence[{extra}]" in str(info.value)
    assert extra in declared_extras()


def test_an_unknown_scheme_is_unavailable() -> None:
    with pytest.raises(DriverUnavailableError, match=r"keepup\.drivers"):
        open_store("nosuch://x")


@pytest.mark.parametrize("url", ["", "sqlite", "/tmp/x.db", 5])
def test_malformed_urls_are_refused(url: object) -> None:
    with pytest.raises(ValidationError):
        open_store(url)  # type: ignore[arg-type]


def test_local_schemes_open_their_drivers(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryDriver)
    file_store = open_store(f"file://{tmp_path / 'f'}")
    assert isinstance(file_store, FileDriver) and file_store.root == tmp_path / "f"
    sqlite_store = open_store(f"sqlite:///{tmp_path / 's.db'}", durability="relaxed")
    assert isinstance(sqlite_store, SqliteDriver) and sqlite_store.durability is Durability.RELAXED
    assert sqlite_store.path == tmp_path / "s.db"
    sqlite_store.close()


def test_sqlite_urls_follow_sqlalchemy_three_slashes_relative_four_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    four = open_store(f"sqlite:////{tmp_path.as_posix().lstrip('/')}/a.db")
    assert isinstance(four, SqliteDriver) and four.path == tmp_path / "a.db"
    four.close()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rel = open_store("sqlite:///sub/b.db")
    assert isinstance(rel, SqliteDriver) and rel.path == Path("sub/b.db")
    assert (work / "sub" / "b.db").exists()
    rel.close()
    # the absolute reading of three slashes must not happen: nothing was created at /sub
    assert not Path("/sub/b.db").exists()


def test_a_sqlite_url_with_a_host_part_is_refused_with_both_forms_named() -> None:
    with pytest.raises(ValidationError, match=r"sqlite:///relative/path.db or sqlite:////absolute"):
        open_store("sqlite://sub/b.db")


@pytest.mark.parametrize("name", ["plain.db", "with space.db", "q?uery.db", "hash#.db", "per%25cent.db"])
def test_sqlite_url_round_trips_any_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    absolute = open_store(sqlite_url(tmp_path / name))
    assert isinstance(absolute, SqliteDriver) and absolute.path == tmp_path / name
    assert absolute.url == sqlite_url(tmp_path / name)
    absolute.close()
    monkeypatch.chdir(tmp_path)
    relative = open_store(sqlite_url(Path("rel") / name))
    assert isinstance(relative, SqliteDriver) and relative.path == Path("rel") / name
    relative.close()
    assert (tmp_path / "rel" / name).exists()


def test_unknown_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        open_store(f"sqlite:///{tmp_path / 'a.db'}?bogus=1")
    with pytest.raises(ValidationError):
        open_store(f"file://{tmp_path / 'f'}", bogus=1)


def test_a_third_party_scheme_registers_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "thirdparty_store.py").write_text(
        textwrap.dedent(
            """
            from runtime_persistence.storage.drivers.memory import MemoryDriver

            class ThirdPartyDriver(MemoryDriver):
                @classmethod
                def from_url(cls, url, *, durability, **options):
                    return cls(url)
            """
        )
    )
    dist = tmp_path / "thirdparty_store-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-store\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[keepup.drivers]\nthirdparty = thirdparty_store:ThirdPartyDriver\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    driver = open_store("thirdparty://label")
    assert type(driver).__name__ == "ThirdPartyDriver" and driver.url == "thirdparty://label"
    driver.put("ns", "k", b"v")
    assert driver.get("ns", "k") == Entry("k", b"v", 1)


def test_passwords_are_redacted() -> None:
    assert redact_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_local_stores_work_with_every_driver_library_missing(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        for name in ("psycopg", "psycopg_pool", "redis", "pymongo", "pymysql", "zstandard", "cryptography"):
            sys.modules[name] = None
        import runtime_persistence
        from runtime_persistence.storage.stores import open_store
        from runtime_persistence.storage.serialization import dumps, loads
        for url in ("memory://", "file://{tmp_path / "f"}", "sqlite:///{tmp_path / "s.db"}"):
            store = open_store(url)
            store.put("ns", "k", dumps({{"ok": True}}))
            assert loads(store.get("ns", "k").value) == {{"ok": True}}
            assert store.get_blob(store.put_blob(b"blob").digest) == b"blob"
            store.close()
        loaded = sorted(m for m in ("psycopg", "redis", "pymongo", "pymysql", "zstandard", "cryptography")
                        if sys.modules.get(m) is not None)
        print("ok", loaded)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok []"
