"""``keepup browse`` on an encrypted store reads with the keyring (issue 11): the source takes
the serializer the CLI builds from --keyring, $KEEPUP_KEYRING or the home's keyring.toml."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from keepup._browse.source import StoreSource
from keepup.runtime import open_runtime, resolved_keyring
from runtime_core import ValidationError
from runtime_persistence import EnvelopeSerializer
from runtime_persistence.encryption import add_keyring_key


def test_the_browser_reads_an_encrypted_store_with_the_keyring(tmp_path: Path) -> None:
    ring_file = tmp_path / "ring.toml"
    add_keyring_key(ring_file, "k1")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_runtime(url, home=tmp_path / "home", keyring=ring_file) as runtime:
        thread = runtime.checkpoints.create_thread("secret thread")
        runtime.checkpoints.save(thread.id, {"messages": [{"role": "user", "content": "a secret"}]})
    ring = resolved_keyring(ring_file)
    assert ring is not None

    async def names(serializer: EnvelopeSerializer | None) -> list[str]:
        async with await StoreSource.open(url, home=tmp_path / "home", serializer=serializer) as source:
            return [t.name for t in await source.threads()]

    assert asyncio.run(names(EnvelopeSerializer(keyring=ring))) == ["secret thread"]
    with pytest.raises(ValidationError, match="encrypted"):
        asyncio.run(names(None))
