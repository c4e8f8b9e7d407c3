"""``keepup store encrypt``: rewrites a store under a key read from a file, with --dry-run and
--json, resumable, and the store then reads under the key only (issue 11, hole 1)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from keepup._cli.exit_codes import ExitCode
from keepup.cli import app
from runtime_persistence import Checkpoints, EnvelopeSerializer, Keyring, open_store
from typer.testing import CliRunner, Result

KEY = bytes(range(32))


def invoke(home: Path, *args: str) -> Result:
    env: dict[str, str | None] = {
        "KEEPUP_HOME": str(home),
        "KEEPUP_STORE_URL": None,
        "KEEPUP_DEBUG": None,
        "HOME": str(home.parent),
    }
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    driver = open_store(url)
    cps = Checkpoints(driver)
    t = cps.create_thread("secret thread")
    cps.save(t.id, {"messages": ["a secret"]})
    cps.save(t.id, {"messages": ["a secret", "another"]})
    driver.close()
    return url


@pytest.mark.parametrize("form", ["raw", "hex", "base64"])
def test_store_encrypt_rewrites_the_store_under_the_key_from_a_file(
    tmp_path: Path, store_url: str, form: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(
        {"raw": KEY, "hex": KEY.hex().encode() + b"\n", "base64": base64.b64encode(KEY)}[form]
    )
    home = tmp_path / "home"
    dry = invoke(
        home, "--store", store_url, "store", "encrypt", "--key", f"k1={key_file}", "--dry-run", "--json"
    )
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["key_id"] == "k1"
    assert planned["rewritten"] == 6 and planned["already"] == 0 and planned["damaged"] == []
    assert planned["namespaces"]["ckpt"]["rewritten"] == 2
    done = invoke(home, "--store", store_url, "store", "encrypt", "--key", f"k1={key_file}", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["dry_run"] is False and report["rewritten"] == planned["rewritten"]
    again = invoke(home, "--store", store_url, "store", "encrypt", "--key", f"k1={key_file}", "--json")
    assert json.loads(again.stdout)["rewritten"] == 0
    assert json.loads(again.stdout)["already"] == report["rewritten"]
    driver = open_store(store_url)
    try:
        cps = Checkpoints(driver, serializer=EnvelopeSerializer(keyring=Keyring({"k1": KEY})))
        (thread,) = cps.list_threads()
        assert cps.latest(thread.id).state == {"messages": ["a secret", "another"]}
        raw = b"".join(e.value for e in driver.scan("ckpt"))
        assert b"a secret" not in raw
    finally:
        driver.close()


def test_store_encrypt_refuses_a_bad_key_file_and_changes_nothing(tmp_path: Path, store_url: str) -> None:
    home = tmp_path / "home"
    short = tmp_path / "short"
    short.write_bytes(b"too short")
    for spec in (f"k1={short}", f"k1={tmp_path / 'missing'}", str(short), f"={short}"):
        result = invoke(home, "--store", store_url, "store", "encrypt", "--key", spec)
        assert result.exit_code == ExitCode.INVALID, (spec, result.output)
    dry = invoke(
        home, "--store", store_url, "store", "encrypt", "--key", f"k1={_key(tmp_path)}", "--dry-run", "--json"
    )
    assert json.loads(dry.stdout)["already"] == 0


def _key(tmp_path: Path) -> Path:
    path = tmp_path / "good-key"
    path.write_bytes(KEY)
    return path
