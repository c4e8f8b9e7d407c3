"""The CLI's keyring (issue 11): `keepup store key new` writes a private keyring file in the home,
every command then reads and writes the store encrypted with it (or with --keyring FILE or
$KEEPUP_KEYRING), `store encrypt` uses it without --key, rotation moves every record to the new
active key, and gc works on the encrypted store."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from runtime_persistence import Checkpoints, open_store
from runtime_persistence.encryption import RECORD_NAMESPACES
from runtime_persistence.storage.serialization import ENCRYPTION_AES_GCM, MAGIC
from typer.testing import CliRunner, Result


def invoke(home: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    full: dict[str, str | None] = {
        "KEEPUP_HOME": str(home),
        "KEEPUP_STORE_URL": None,
        "KEEPUP_KEYRING": None,
        "KEEPUP_DEBUG": None,
        "HOME": str(home.parent),
        **(env or {}),
    }
    return CliRunner().invoke(app, list(args), env=full)


def _key_ids(url: str) -> set[str]:
    """The key id in the header of every stored record ('' for a plaintext one)."""
    driver = open_store(url)
    try:
        ids = set()
        for ns in RECORD_NAMESPACES:
            for e in driver.scan(ns):
                v = bytes(e.value)
                if v[:2] != MAGIC:
                    continue
                ids.add(v[7 : 7 + v[6]].decode() if v[5] == ENCRYPTION_AES_GCM else "")
        return ids
    finally:
        driver.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    old = os.umask(0o022)  # the usual umask: the keyring must still be private
    yield tmp_path / "home"
    os.umask(old)


def _plain_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    driver = open_store(url)
    cps = Checkpoints(driver)
    t = cps.create_thread("secret thread")
    cps.save(t.id, {"messages": ["a secret"], "doc": "a secret document " * 100})  # a blob
    # about 48 KB of messages: a list stored in several chunks (sealed 16 KB pieces and a tail)
    cps.save(t.id, {"messages": [f"a secret {i} " + "x" * 1200 for i in range(40)]})
    driver.close()
    return url


def _file_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))


def test_a_keyring_in_the_home_encrypts_the_store_for_every_command(tmp_path: Path, home: Path) -> None:
    url = _plain_store(tmp_path)
    made = invoke(home, "--store", url, "store", "key", "new", "k1", "--json")
    assert made.exit_code == 0, made.output
    ring_file = home / "keyring.toml"
    assert json.loads(made.stdout) == {
        "keyring": str(ring_file),
        "key_id": "k1",
        "active": "k1",
        "key_ids": ["k1"],
    }
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    key = tomllib.loads(ring_file.read_text())["keys"]["k1"]
    assert key not in made.output

    # the home's keyring now reads the store: its plaintext records are refused until encrypted
    refused = invoke(home, "--store", url, "thread", "list", "--json")
    assert refused.exit_code == ExitCode.CORRUPT and "store encrypt" in refused.output
    assert _file_bytes(tmp_path).count(b"a secret") > 40
    done = invoke(home, "--store", url, "store", "encrypt", "--yes", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["key_id"] == "k1" and report["rewritten"] > 0
    assert report["blobs_rewritten"] > 3 and report["records_relinked"] == 2 and report["blobs_removed"] > 3
    assert _key_ids(url) == {"k1"}
    assert b"a secret" not in _file_bytes(tmp_path)  # records, blobs, free pages and the WAL
    listed = invoke(home, "--store", url, "thread", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [t["name"] for t in json.loads(listed.stdout)["threads"]] == ["secret thread"]

    # new writes are encrypted too, and gc works on the encrypted store with artifacts
    src = tmp_path / "report.md"
    src.write_text("# a secret report\n")
    put = invoke(home, "--store", url, "artifact", "put", "reports", "r.md", str(src))
    assert put.exit_code == 0, put.output
    assert invoke(home, "--store", url, "artifact", "delete", "reports", "r.md", "--yes").exit_code == 0
    gc = invoke(home, "--store", url, "store", "gc", "--grace", "0s", "--yes", "--json")
    assert gc.exit_code == 0, gc.output
    assert _key_ids(url) == {"k1"}
    # export, then import into another store under the same keyring: encrypted there too
    export_file = tmp_path / "export.keepup"
    exported = invoke(home, "--store", url, "checkpoint", "export", str(export_file), "--yes")
    assert exported.exit_code == 0, exported.output
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = invoke(home, "--store", other, "checkpoint", "import", str(export_file))
    assert imported.exit_code == 0, imported.output
    assert _key_ids(other) == {"k1"}
    shown = invoke(home, "--store", other, "thread", "list", "--json")
    assert [t["name"] for t in json.loads(shown.stdout)["threads"]] == ["secret thread"]

    # without the keyring the store is refused, not served
    ring_file.rename(tmp_path / "elsewhere.toml")
    locked = invoke(home, "--store", url, "thread", "list", "--json")
    assert locked.exit_code == ExitCode.INVALID and "keyring" in locked.output
    # --keyring FILE and $KEEPUP_KEYRING name it elsewhere
    by_option = invoke(home, "--keyring", str(tmp_path / "elsewhere.toml"), "--store", url, "thread", "list")
    assert by_option.exit_code == 0, by_option.output
    by_env = invoke(
        home, "--store", url, "thread", "list", env={"KEEPUP_KEYRING": str(tmp_path / "elsewhere.toml")}
    )
    assert by_env.exit_code == 0, by_env.output
    missing = invoke(
        home, "--store", url, "thread", "list", env={"KEEPUP_KEYRING": str(tmp_path / "nope.toml")}
    )
    assert missing.exit_code == ExitCode.INVALID and "nope.toml" in missing.output


def test_rotation_moves_every_record_to_the_new_key(tmp_path: Path, home: Path) -> None:
    url = _plain_store(tmp_path)
    assert invoke(home, "--store", url, "store", "key", "new", "k1").exit_code == 0
    assert invoke(home, "--store", url, "store", "encrypt", "--yes").exit_code == 0
    rotated = invoke(home, "--store", url, "store", "key", "new", "k2", "--json")
    assert json.loads(rotated.stdout)["active"] == "k2"
    assert invoke(home, "--store", url, "store", "key", "new", "k2").exit_code == ExitCode.INVALID
    assert _key_ids(url) == {"k1"}
    dry = invoke(home, "--store", url, "store", "encrypt", "--dry-run", "--json")
    assert json.loads(dry.stdout)["rewritten"] > 0 and _key_ids(url) == {"k1"}
    assert invoke(home, "--store", url, "store", "encrypt", "--yes").exit_code == 0
    assert _key_ids(url) == {"k2"}
    listing = invoke(home, "--store", url, "store", "key", "list", "--json")
    assert json.loads(listing.stdout) == {
        "keyring": str(home / "keyring.toml"),
        "active": "k2",
        "key_ids": ["k1", "k2"],
    }
    # the old key can now go: the store reads with k2 alone
    ring_file = home / "keyring.toml"
    text = "\n".join(line for line in ring_file.read_text().splitlines() if not line.startswith("k1 "))
    ring_file.write_text(text + "\n")
    shown = invoke(home, "--store", url, "thread", "list", "--json")
    assert shown.exit_code == 0, shown.output


@pytest.mark.parametrize(
    ("content", "mode", "needle"),
    [
        ('active = "k1"\n[keys]\nk1 = "c2hvcnQ="\n', 0o600, "256-bit"),
        ('active = "k9"\n[keys]\nk1 = "' + "00" * 32 + '"\n', 0o600, "not in its [keys]"),
        ("[keys]\n", 0o600, "no [keys]"),
        ("not toml = = \n", 0o600, "not valid TOML"),
        ('active = "k1"\n[keys]\nk1 = "' + "00" * 32 + '"\n', 0o644, "open to other users"),
    ],
)
def test_a_bad_keyring_file_is_a_usage_error_that_never_shows_a_key(
    tmp_path: Path, home: Path, content: str, mode: int, needle: str
) -> None:
    url = _plain_store(tmp_path)
    ring_file = tmp_path / "ring.toml"
    ring_file.write_text(content)
    ring_file.chmod(mode)
    result = invoke(home, "--keyring", str(ring_file), "--store", url, "thread", "list")
    assert result.exit_code == ExitCode.INVALID, result.output
    assert needle in result.output and "00" * 32 not in result.output


def test_store_encrypt_without_key_or_keyring_says_how_to_make_one(tmp_path: Path, home: Path) -> None:
    url = _plain_store(tmp_path)
    result = invoke(home, "--store", url, "store", "encrypt", "--yes")
    assert result.exit_code == ExitCode.INVALID and "store key new" in result.output


def test_store_doctor_reports_an_open_keyring_and_fix_repairs_it(tmp_path: Path, home: Path) -> None:
    url = _plain_store(tmp_path)
    assert invoke(home, "--store", url, "store", "key", "new", "k1").exit_code == 0
    ring_file = home / "keyring.toml"
    ring_file.chmod(0o644)
    result = invoke(home, "--store", url, "store", "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["permissions"]["status"] == "fail" and str(ring_file) in checks["permissions"]["detail"]
    fixed = invoke(home, "--store", url, "store", "doctor", "--fix", "--json")
    checks = {c["name"]: c for c in json.loads(fixed.stdout)["checks"]}
    assert checks["permissions"]["status"] == "ok"
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
