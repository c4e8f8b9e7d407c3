"""The artifact store on every available driver: versions, content addressing, streaming, keys,
deletes, typed artifacts and quarantine, concurrency, corruption and garbage collection."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from runtime_core import (
    ArtifactRef,
    ArtifactStore,
    ConflictError,
    CorruptionError,
    Driver,
    ManualClock,
    NotFoundError,
    TypedArtifact,
    ValidationError,
)
from runtime_persistence import Checkpoints
from runtime_persistence.artifact.artifacts import (
    ARTIFACT_HWM_NS,
    ARTIFACT_NS,
    TYPED_MEDIA_TYPE,
    Artifacts,
    validate_artifact_key,
)
from runtime_persistence.artifact.schemas import BUILTIN_SCHEMAS, ArtifactSchemas
from runtime_persistence.testing import TestStore, store_fixture
from runtime_telemetry import StructuredTelemetry

art_store = store_fixture(modes=("sync", "async"))


@pytest.fixture
def driver(art_store: TestStore) -> Driver:
    return art_store.driver


@pytest.fixture
def arts(art_store: TestStore) -> Artifacts:
    arts: Artifacts = art_store.make(Artifacts, clock=ManualClock())
    return arts


def _blob_count(driver: Driver) -> int:
    return sum(1 for _ in driver.list_blobs())


# -- basics ---------------------------------------------------------------------------------------


def test_artifacts_implements_the_core_protocol(arts: Artifacts) -> None:
    assert isinstance(arts, ArtifactStore)


def test_versions_count_from_zero_and_get_returns_latest(arts: Artifacts) -> None:
    v0 = arts.put("t1", "out/report.md", b"first", media_type="text/markdown", metadata={"step": 1})
    v1 = arts.put("t1", "out/report.md", b"second", media_type="text/markdown")
    assert (v0.version, v1.version) == (0, 1)
    assert v0.metadata == {"step": 1}
    info, data = arts.get("t1", "out/report.md")
    assert (info.version, data) == (1, b"second")
    info0, data0 = arts.get("t1", "out/report.md", 0)
    assert (info0.version, data0, info0.media_type) == (0, b"first", "text/markdown")
    assert info0.digest == hashlib.sha256(b"first").hexdigest()
    assert info0.size == 5
    assert arts.info("t1", "out/report.md").version == 1
    assert [v.version for v in arts.versions("t1", "out/report.md")] == [0, 1]


def test_same_bytes_are_stored_once(arts: Artifacts, driver: Driver) -> None:
    payload = b"x" * 10_000
    a = arts.put("t1", "a.bin", payload)
    before = _blob_count(driver)
    b = arts.put("t2", "b.bin", payload)
    c = arts.put("t1", "a.bin", payload)
    assert a.digest == b.digest == c.digest
    assert _blob_count(driver) == before


def test_streamed_put_and_open_round_trip(arts: Artifacts) -> None:
    chunks = [bytes([i]) * 70_000 for i in range(20)]
    version = arts.put("t1", "big.bin", iter(chunks))
    assert version.size == 70_000 * 20
    assert version.digest == hashlib.sha256(b"".join(chunks)).hexdigest()
    info, stream = arts.open("t1", "big.bin")
    assert info == version
    assert b"".join(stream) == b"".join(chunks)


def test_missing_artifact_and_version_raise_not_found(arts: Artifacts) -> None:
    with pytest.raises(NotFoundError):
        arts.get("t1", "nope.txt")
    arts.put("t1", "a.txt", b"a")
    with pytest.raises(NotFoundError):
        arts.get("t1", "a.txt", 5)
    with pytest.raises(NotFoundError):
        arts.get("other-scope", "a.txt")


def test_keys_lists_each_key_once_with_prefix(arts: Artifacts) -> None:
    for key in ["reports/a.md", "reports/b.md", "images/x.png", "reports/a.md", "reportsx"]:
        arts.put("t1", key, key.encode())
    arts.put("t2", "reports/c.md", b"c")
    assert arts.keys("t1") == ["images/x.png", "reports/a.md", "reports/b.md", "reportsx"]
    assert arts.keys("t1", "reports/") == ["reports/a.md", "reports/b.md"]
    assert arts.keys("t2") == ["reports/c.md"]
    assert arts.keys("empty") == []


def test_scopes_do_not_see_each_other(arts: Artifacts) -> None:
    arts.put("a", "k", b"1")
    arts.put("a/b", "k", b"2")
    assert arts.get("a", "k")[1] == b"1"
    assert arts.get("a/b", "k")[1] == b"2"
    assert [v.version for v in arts.versions("a", "k")] == [0]


def test_resolve_follows_an_artifact_ref(arts: Artifacts) -> None:
    v = arts.put("t1", "a.txt", b"a")
    arts.put("t1", "a.txt", b"b")
    assert arts.resolve(ArtifactRef("t1", "a.txt", 0)) == v


def test_put_emits_a_timed_telemetry_event(art_store: TestStore) -> None:
    telemetry = StructuredTelemetry()
    arts = art_store.make(Artifacts, telemetry=telemetry)
    arts.put("t1", "a.txt", b"abc")
    [event] = telemetry.recent_events("artifact.put")
    assert event.fields["version"] == 0 and event.fields["size"] == 3
    assert "duration_ms" in event.fields


# -- deletes ---------------------------------------------------------------------------------------


def test_delete_one_version_keeps_the_others(arts: Artifacts) -> None:
    for i in range(3):
        arts.put("t1", "a.txt", f"v{i}".encode())
    assert arts.delete("t1", "a.txt", 1) == 1
    assert [v.version for v in arts.versions("t1", "a.txt")] == [0, 2]
    with pytest.raises(NotFoundError):
        arts.get("t1", "a.txt", 1)
    assert arts.delete("t1", "a.txt", 1) == 0


def test_deleted_latest_version_number_is_never_reused(arts: Artifacts) -> None:
    arts.put("t1", "a.txt", b"v0")
    arts.put("t1", "a.txt", b"v1")
    arts.delete("t1", "a.txt", 1)
    again = arts.put("t1", "a.txt", b"other content")
    assert again.version == 2


def test_delete_key_removes_every_version_and_numbering_continues(arts: Artifacts) -> None:
    for i in range(4):
        arts.put("t1", "a.txt", f"v{i}".encode())
    assert arts.delete("t1", "a.txt") == 4
    assert arts.keys("t1") == []
    assert arts.versions("t1", "a.txt") == []
    with pytest.raises(NotFoundError):
        arts.get("t1", "a.txt")
    assert arts.put("t1", "a.txt", b"new").version == 4
    assert arts.delete("t1", "missing.txt") == 0


# -- keys ------------------------------------------------------------------------------------------

BAD_ARTIFACT_KEYS = [
    "",
    "/etc/passwd",
    "../up.txt",
    "a/../../b",
    "a/./b",
    ".",
    "a//b",
    "a/",
    "a\\b",
    "..\\windows",
    "C:evil.txt",
    "c:/x",
    "a\x00b",
    "a\nb",
    "a\x1fb",
    "\u202eexe.txt",
    "\uff0e\uff0e/x",  # full-width dots
    "a\uff3cb",  # full-width backslash
    "x" * 201,
    "é" * 170,  # 340 UTF-8 bytes
    "a\ud800",
]


@pytest.mark.parametrize("key", BAD_ARTIFACT_KEYS, ids=repr)
def test_bad_keys_are_refused_before_anything_is_written(arts: Artifacts, driver: Driver, key: str) -> None:
    blobs = _blob_count(driver)
    with pytest.raises(ValidationError):
        arts.put("t1", key, b"payload that must not be stored")
    assert list(driver.scan(ARTIFACT_NS)) == []
    assert _blob_count(driver) == blobs


@pytest.mark.parametrize(
    "key", ["a.txt", "dir/sub/file name.md", "ünïcode/日本語.txt", ".hidden", "a..b", "x" * 200]
)
def test_good_keys_are_accepted(arts: Artifacts, key: str) -> None:
    assert arts.put("t1", key, b"x").key == key


def test_keys_are_nfc_normalised(arts: Artifacts) -> None:
    decomposed = unicodedata.normalize("NFD", "café.txt")
    stored = arts.put("t1", decomposed, b"x")
    assert stored.key == unicodedata.normalize("NFC", "café.txt")
    assert arts.get("t1", "café.txt")[1] == b"x"
    assert arts.get("t1", decomposed)[1] == b"x"
    assert validate_artifact_key(decomposed) == "café.txt"


def test_case_fold_collision_is_refused(arts: Artifacts, driver: Driver) -> None:
    arts.put("t1", "report.md", b"lower")
    with pytest.raises(ValidationError, match="case"):
        arts.put("t1", "Report.md", b"upper")
    with pytest.raises(ValidationError):
        arts.put("t1", "REPORT.MD", b"upper")
    assert arts.keys("t1") == ["report.md"]
    assert arts.put("t2", "Report.md", b"other scope is fine").version == 0
    with pytest.raises(NotFoundError):
        arts.get("t1", "Report.md")


def test_case_variant_is_allowed_once_the_original_is_deleted(arts: Artifacts) -> None:
    arts.put("t1", "straße.txt", b"a")
    with pytest.raises(ValidationError):
        arts.put("t1", "STRASSE.txt", b"b")  # casefold('ß') == 'ss'
    arts.delete("t1", "straße.txt")
    assert arts.put("t1", "STRASSE.txt", b"b").version == 1
    assert arts.keys("t1") == ["STRASSE.txt"]


def test_bad_scope_media_type_or_metadata_write_nothing(arts: Artifacts, driver: Driver) -> None:
    calls: list[Callable[[], object]] = [
        lambda: arts.put("", "a", b"x"),
        lambda: arts.put("s\x00", "a", b"x"),
        lambda: arts.put("s" * 200, "a", b"x"),
        lambda: arts.put("s", "a", b"x", media_type=""),
        lambda: arts.put("s", "a", b"x", metadata={"bad": object()}),
        lambda: arts.put("s", "a", "text, not bytes"),  # type: ignore[arg-type]
        lambda: arts.put("s", "a", [b"ok", "not bytes"]),  # type: ignore[list-item]
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call()
    assert list(driver.scan(ARTIFACT_NS)) == []


# -- concurrency -----------------------------------------------------------------------------------


def test_concurrent_writers_never_share_a_version(art_store: TestStore) -> None:
    # one writer in the store's mode (two threads into one event loop in async mode), one sync
    drivers = [art_store.driver, art_store.driver if art_store.url is None else art_store.open()]
    stores = [art_store.make(Artifacts), Artifacts(drivers[1])]
    errors: list[BaseException] = []
    per_writer = 15

    def write(i: int) -> None:
        try:
            for j in range(per_writer):
                stores[i].put("t1", "shared.txt", f"writer {i} put {j}".encode())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        versions = stores[0].versions("t1", "shared.txt")
        assert [v.version for v in versions] == list(range(2 * per_writer))
        contents = {stores[0].get("t1", "shared.txt", v.version)[1] for v in versions}
        assert contents == {f"writer {i} put {j}".encode() for i in range(2) for j in range(per_writer)}
    finally:
        if drivers[1] is not drivers[0]:
            drivers[1].close()


def test_concurrent_case_variants_leave_only_one_key(art_store: TestStore) -> None:
    drivers = [art_store.driver, art_store.driver if art_store.url is None else art_store.open()]
    stores = [art_store.make(Artifacts), Artifacts(drivers[1])]
    keys = ["notes.txt", "NOTES.txt"]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def write(i: int) -> None:
        barrier.wait()
        for _ in range(5):
            try:
                stores[i].put("t1", keys[i], b"x")
                outcomes.append(keys[i])
            except ValidationError:
                outcomes.append("refused")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        live = stores[0].keys("t1")
        assert len(live) == 1
        assert {v.key for v in stores[0].versions("t1", live[0])} == {live[0]}
        assert outcomes.count(live[0]) == len(stores[0].versions("t1", live[0]))
    finally:
        if drivers[1] is not drivers[0]:
            drivers[1].close()


# -- typed artifacts -------------------------------------------------------------------------------


def test_valid_typed_artifact_is_stored_and_read_back(arts: Artifacts) -> None:
    report = TypedArtifact("report@1", {"title": "Weekly", "body": "# all green", "format": "markdown"})
    version = arts.put_typed("t1", "weekly.json", report, metadata={"run": "r1"})
    assert version.artifact_type == "report@1"
    assert not version.quarantined
    assert version.media_type == TYPED_MEDIA_TYPE
    info, back = arts.get_typed("t1", "weekly.json")
    assert back == report
    assert info.metadata == {"run": "r1"}
    assert arts.quarantined("t1") == []


@pytest.mark.parametrize(
    ("artifact", "reason"),
    [
        (TypedArtifact("report@1", {"body": "no title"}), "title"),
        (TypedArtifact("test_report@1", {"summary": {"total": 3, "passed": -1, "failed": 0}}), "passed"),
        (TypedArtifact("diff@1", {"files": [{"path": "a", "status": "exploded"}]}), "status"),
        (TypedArtifact("image@1", {"blob": "not-a-digest", "media_type": "image/png"}), "blob"),
        (TypedArtifact("mystery@7", {"anything": 1}), "no schema"),
    ],
    ids=["report", "test_report", "diff", "image", "unknown-type"],
)
def test_invalid_typed_artifact_is_quarantined_not_dropped(
    arts: Artifacts, artifact: TypedArtifact, reason: str
) -> None:
    version = arts.put_typed("t1", "bad.json", artifact)
    assert version.quarantined
    assert version.quarantine_reason is not None and reason in version.quarantine_reason
    [listed] = arts.quarantined("t1")
    assert listed == version
    info, back = arts.get_typed("t1", "bad.json")
    assert back == artifact and info.quarantined


def test_quarantine_listing_spans_keys_and_skips_valid_ones(arts: Artifacts) -> None:
    arts.put_typed("t1", "a.json", TypedArtifact("report@1", {"title": "ok", "body": ""}))
    arts.put_typed("t1", "b.json", TypedArtifact("report@1", {"title": ""}))
    arts.put_typed("t1", "c.json", TypedArtifact("diff@1", {}))
    arts.put("t1", "plain.txt", b"not typed")
    arts.put_typed("t2", "d.json", TypedArtifact("diff@1", {}))
    assert [(v.key, v.version) for v in arts.quarantined("t1")] == [("b.json", 0), ("c.json", 0)]


def test_image_artifact_names_its_blob(arts: Artifacts, driver: Driver) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    version = arts.put_image("t1", "shots/home.png", png, media_type="image/png", width=10, height=20)
    assert not version.quarantined
    _, typed = arts.get_typed("t1", "shots/home.png")
    assert typed.type == "image@1"
    assert typed.body["width"] == 10 and typed.body["size"] == len(png)
    assert driver.get_blob(typed.body["blob"]) == png


def test_image_naming_a_missing_blob_is_quarantined(arts: Artifacts) -> None:
    body = {"blob": "ab" * 32, "media_type": "image/png"}
    version = arts.put_typed("t1", "ghost.png", TypedArtifact("image@1", body))
    assert version.quarantined
    assert "not in the store" in (version.quarantine_reason or "")


def test_get_typed_refuses_a_plain_artifact(arts: Artifacts) -> None:
    arts.put("t1", "plain.txt", b"hello")
    with pytest.raises(ValidationError):
        arts.get_typed("t1", "plain.txt")


def test_custom_schema_validates_its_type(art_store: TestStore) -> None:
    schemas = ArtifactSchemas()
    schemas.register(
        "metric@1", {"type": "object", "required": ["value"], "properties": {"value": {"type": "number"}}}
    )
    arts = art_store.make(Artifacts, schemas=schemas)
    assert not arts.put_typed("t1", "m.json", TypedArtifact("metric@1", {"value": 1.5})).quarantined
    assert arts.put_typed("t1", "n.json", TypedArtifact("metric@1", {"value": "high"})).quarantined


@pytest.mark.parametrize("type_name", sorted(BUILTIN_SCHEMAS))
def test_every_builtin_schema_is_a_valid_json_schema(type_name: str) -> None:
    """Builtins are stored without a check (jsonschema is imported only on first validation), so
    their validity is checked here."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(BUILTIN_SCHEMAS[type_name])
    assert ArtifactSchemas().errors(type_name, {}) != []  # a validator is built on first use


def test_a_registry_imports_jsonschema_only_when_it_validates() -> None:
    code = (
        "import sys; from runtime_persistence.artifact.schemas import BUILTIN_SCHEMAS, ArtifactSchemas; "
        "s = ArtifactSchemas(); print('jsonschema' in sys.modules); "
        "s.errors('report@1', {}); print('jsonschema' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_schema_registry_never_changes_a_registered_schema() -> None:
    schemas = ArtifactSchemas()
    schema = {"type": "object"}
    schemas.register("thing@1", schema)
    schemas.register("thing@1", {"type": "object"})  # the same again: fine
    with pytest.raises(ValidationError, match="different schema"):
        schemas.register("thing@1", {"type": "array"})
    with pytest.raises(ValidationError):
        schemas.register("report@1", {"type": "object"})
    with pytest.raises(ValidationError):
        schemas.register("thing@2", {"type": "no-such-type"})
    with pytest.raises(ValidationError):
        schemas.register("Bad Name", {"type": "object"})
    assert {"report@1", "diff@1", "test_report@1", "image@1", "thing@1"} <= set(schemas.types())
    with pytest.raises(NotFoundError):
        schemas.schema("nothing@1")


# -- corruption ------------------------------------------------------------------------------------


def test_a_damaged_record_raises_corruption(arts: Artifacts, driver: Driver) -> None:
    arts.put("t1", "a.txt", b"hello")
    [entry] = list(driver.scan(ARTIFACT_NS))
    damaged = bytearray(entry.value)
    damaged[len(damaged) // 2] ^= 0x01
    driver.put(ARTIFACT_NS, entry.key, bytes(damaged))
    with pytest.raises(CorruptionError):
        arts.get("t1", "a.txt")


def test_version_mark_records_are_in_an_artifact_namespace(arts: Artifacts, driver: Driver) -> None:
    arts.put("t1", "a.txt", b"hello")
    arts.delete("t1", "a.txt")
    assert len(list(driver.scan(ARTIFACT_HWM_NS))) == 1


# -- garbage collection ----------------------------------------------------------------------------


def test_artifact_referenced_from_a_checkpoint_survives_gc(art_store: TestStore, driver: Driver) -> None:
    arts = art_store.make(Artifacts)
    checkpoints = Checkpoints(driver)
    kept = arts.put("t1", "kept.bin", b"needed by a checkpoint" * 100)
    image = arts.put_image("t1", "kept.png", b"\x89PNG image bytes", media_type="image/png")
    doomed = arts.put("t1", "doomed.bin", b"deleted before gc" * 100)
    thread = checkpoints.create_thread("with artifacts")
    checkpoints.save(thread.id, {"step": 1}, artifacts=(kept.ref, image.ref))
    arts.delete("t1", "doomed.bin")

    report = checkpoints.gc(grace=timedelta(0))

    assert report.blobs_removed >= 1
    assert not driver.has_blob(doomed.digest)  # proves gc ran and collects what nothing names
    cp = checkpoints.latest(thread.id)
    assert cp is not None
    for ref in cp.artifacts:
        assert arts.get(ref.scope, ref.key, ref.version)[1]
    _, typed = arts.get_typed("t1", "kept.png")
    assert driver.get_blob(typed.body["blob"]) == b"\x89PNG image bytes"


# -- bounded memory --------------------------------------------------------------------------------

big_store = store_fixture("file", "sqlite", modes=("sync", "async"))


@pytest.mark.slow
def test_one_gib_artifact_streams_in_bounded_memory(big_store: TestStore) -> None:
    import tracemalloc

    import psutil  # type: ignore[import-untyped]

    arts = big_store.make(Artifacts)
    chunk = bytes(range(256)) * 4096  # 1 MiB
    total = 1024
    expected = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for i in range(total):
            piece = i.to_bytes(4, "big") + chunk[4:]
            expected.update(piece)
            yield piece

    process = psutil.Process()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    try:
        version = arts.put("t1", "huge.bin", chunks())
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _, stream = arts.open("t1", "huge.bin")
        got = hashlib.sha256()
        size = 0
        for piece in stream:
            got.update(piece)
            size += len(piece)
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = process.memory_info().rss - rss_before
    assert version.size == size == total << 20
    assert got.hexdigest() == expected.hexdigest() == version.digest
    assert put_peak < 64 << 20, f"put held {put_peak} bytes of Python memory"
    assert get_peak < 64 << 20, f"open held {get_peak} bytes of Python memory"
    assert rss_growth < 256 << 20, f"RSS grew by {rss_growth} bytes"


def test_conflict_error_is_typed(arts: Artifacts) -> None:
    # a sanity check that create-only writes really are conditional on this driver
    arts.put("t1", "a.txt", b"x")
    [entry] = list(arts.driver.scan(ARTIFACT_NS))
    with pytest.raises(ConflictError):
        arts.driver.put(ARTIFACT_NS, entry.key, b"other", if_absent=True)


def test_both_forms_of_the_blob_roots_name_every_needed_blob(art_store: TestStore, arts: Artifacts) -> None:
    from runtime_persistence.storage.blob_roots import blob_root_providers
    from runtime_persistence.testing import unwrap

    plain = arts.put("t1", "a.txt", b"plain")
    image = arts.put_image("t1", "i.png", b"\x89PNG", media_type="image/png")
    _, typed = arts.get_typed("t1", "i.png")
    expected = {plain.digest, image.digest, typed.body["blob"]}
    roots = blob_root_providers()["artifacts"]
    assert roots.async_ is not None
    assert set(roots.sync(art_store.driver)) == expected
    if art_store.is_async:  # the async form, on the async driver itself (what the async collector calls)
        assert art_store.portal is not None
        found = set(art_store.portal.iterate(aiter(roots.async_(unwrap(art_store.driver)))))
        assert found == expected


def test_concurrent_async_puts_never_share_a_version(art_store: TestStore) -> None:
    """Many puts of one key at once on one event loop: every one gets its own version."""
    import asyncio

    from runtime_persistence.artifact.artifacts import AsyncArtifacts
    from runtime_persistence.testing import unwrap

    if not art_store.is_async:
        pytest.skip("an event-loop concurrency test")
    assert art_store.portal is not None
    arts = AsyncArtifacts(unwrap(art_store.driver))

    async def many() -> list[int]:
        done = await asyncio.gather(*(arts.put("t1", "same.txt", f"{i}".encode()) for i in range(12)))
        return [v.version for v in done]

    versions = art_store.portal.call(many())
    assert sorted(versions) == list(range(12))
