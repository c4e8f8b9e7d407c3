"""``python -m runtime_persistence.session.recorder --store URL --source URL``: the recorder
without the ``keepup`` command line (the facade's ``keepup recorder`` does the same with more
options). Prints the recovery report and, at the end, the counters as one JSON line each on
stderr and stdout; exits 0 after SIGTERM or SIGINT.

On an encrypted store pass ``--keyring FILE`` (or set ``$KEEPUP_KEYRING``): messages, the
recorder state and checkpoints are then encrypted under its active key, and plaintext records
are refused. Unlike ``keepup``, the keyring file in the Keepup home is not looked for."""

from __future__ import annotations

import argparse
import json
import os
import sys

from runtime_persistence.checkpoint import Checkpoints
from runtime_persistence.session.recorder.daemon import RecorderConfig, serve
from runtime_persistence.session.recorder.messages import MessageStore
from runtime_persistence.session.recorder.sources import open_source
from runtime_persistence.storage.encryption import read_keyring_file
from runtime_persistence.storage.private import KEYRING_ENV
from runtime_persistence.storage.serialization import EnvelopeSerializer
from runtime_persistence.storage.stores import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime_persistence.session.recorder")
    parser.add_argument("--store", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-delay", type=float, default=0.05)
    parser.add_argument("--checkpoint-every", type=float, default=300.0)
    parser.add_argument("--checkpoint-messages", type=int, default=10_000)
    parser.add_argument("--keyring", default=os.environ.get(KEYRING_ENV) or None, help="keyring file")
    args = parser.parse_args(argv)
    config = RecorderConfig(
        batch_size=args.batch_size,
        batch_delay=args.batch_delay,
        checkpoint_every=args.checkpoint_every,
        checkpoint_messages=args.checkpoint_messages,
    )
    serializer = (
        EnvelopeSerializer(keyring=read_keyring_file(args.keyring)) if args.keyring else EnvelopeSerializer()
    )
    source = open_source(args.source)
    driver = open_store(args.store)
    store = MessageStore(driver, serializer=serializer)
    try:

        def recovered(report: dict[str, object]) -> None:
            print(json.dumps({"recovered": report}), file=sys.stderr, flush=True)

        stats = serve(
            store,
            source,
            checkpoints=Checkpoints(driver, serializer=serializer),
            config=config,
            on_recovered=recovered,
        )
    finally:
        store.close()
        driver.close()
    print(json.dumps({"stats": stats.to_json()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
