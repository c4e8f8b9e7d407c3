"""One serializer shared by many threads (as a store shares it) encodes and decodes correctly."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from runtime_persistence.storage.serialization import EnvelopeSerializer


def test_a_compressing_serializer_shared_by_threads_round_trips_every_value() -> None:
    serializer = EnvelopeSerializer(compression="zstd")
    values = [{"i": i, "text": (os.urandom(64).hex() + "abc" * 2000)} for i in range(400)]

    def round_trip(value: dict[str, object]) -> bool:
        return all(serializer.loads(serializer.dumps(value)) == value for _ in range(5))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(round_trip, values))
