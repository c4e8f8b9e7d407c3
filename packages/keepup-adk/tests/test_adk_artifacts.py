"""KeepupArtifactService behaves like ADK's InMemoryArtifactService: the same scripts run on
both, side by side, and must give the same results on every store (case-sensitive filenames,
versions from 0 again after a delete, references, user scope); and savers in several processes
each get their own version."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from google.adk.artifacts import InMemoryArtifactService
from google.adk.artifacts.base_artifact_service import BaseArtifactService
from google.genai import types
from keepup_adk import KeepupArtifactService
from runtime_persistence.testing import TestStore, open_test_store

Script = Callable[[BaseArtifactService], Awaitable[list[Any]]]
S = {"app_name": "app", "user_id": "ann", "session_id": "s1"}
U = {"app_name": "app", "user_id": "ann"}


def side_by_side(store: TestStore, script: Script) -> tuple[list[Any], list[Any]]:
    assert store.url is not None
    url = store.url

    async def ours() -> list[Any]:
        service = KeepupArtifactService(url)
        try:
            return await script(service)
        finally:
            await service.close()

    return asyncio.run(script(InMemoryArtifactService())), asyncio.run(ours())


def dump(part: types.Part | None) -> Any:
    return None if part is None else part.model_dump(mode="json", exclude_none=True)


async def _error(call: Awaitable[Any]) -> str:
    try:
        await call
    except Exception as exc:
        return type(exc).__name__
    return "no error"


def text(value: str) -> types.Part:
    return types.Part(text=value)


def png(data: bytes) -> types.Part:
    return types.Part(inline_data=types.Blob(mime_type="image/png", data=data, display_name="pic"))


def test_save_load_and_versions_match_in_memory(adk_store: TestStore) -> None:
    async def script(svc: BaseArtifactService) -> list[Any]:
        out: list[Any] = [dump(await svc.load_artifact(filename="report.md", **S))]
        out.append(await svc.save_artifact(filename="report.md", artifact=text("v0"), **S))
        out.append(
            await svc.save_artifact(
                filename="report.md", artifact=text("v1 é"), custom_metadata={"k": [1]}, **S
            )
        )
        out.append(await svc.save_artifact(filename="user:avatar.png", artifact=png(b"\x89PNG\x00\xff"), **U))
        out.append(await svc.save_artifact(filename="data.json", artifact={"text": '{"a": 1}'}, **S))
        uri = types.Part(file_data=types.FileData(file_uri="gs://bucket/x.pdf", mime_type="application/pdf"))
        out.append(await svc.save_artifact(filename="remote.pdf", artifact=uri, **S))
        for version in (None, 0, 1, 2, -1):
            out.append(dump(await svc.load_artifact(filename="report.md", version=version, **S)))
        out.append(dump(await svc.load_artifact(filename="user:avatar.png", **U)))
        out.append(dump(await svc.load_artifact(filename="user:avatar.png", session_id="any", **U)))
        out.append(dump(await svc.load_artifact(filename="remote.pdf", **S)))
        out.append(
            dump(
                await svc.load_artifact(filename="report.md", app_name="app", user_id="bob", session_id="s1")
            )
        )
        out.append(await svc.list_versions(filename="report.md", **S))
        versions = await svc.list_artifact_versions(filename="report.md", **S)
        out.append([(v.version, v.mime_type, v.custom_metadata) for v in versions])
        latest = await svc.get_artifact_version(filename="report.md", **S)
        first = await svc.get_artifact_version(filename="report.md", version=0, **S)
        missing = await svc.get_artifact_version(filename="report.md", version=7, **S)
        out.append([(v.version, v.mime_type) if v else None for v in (latest, first, missing)])
        out.append(await svc.list_artifact_keys(**S))
        out.append(await svc.list_artifact_keys(**U))
        out.append(await svc.list_artifact_keys(app_name="app", user_id="ann", session_id="other"))
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert ours[1:3] == [0, 1]


def test_report_md_and_report_md_are_two_artifacts(adk_store: TestStore) -> None:
    async def script(svc: BaseArtifactService) -> list[Any]:
        out = [
            await svc.save_artifact(filename="Report.md", artifact=text("upper"), **S),
            await svc.save_artifact(filename="report.md", artifact=text("lower"), **S),
            await svc.save_artifact(filename="REPORT.md", artifact=text("shout"), **S),
        ]
        for name in ("Report.md", "report.md", "REPORT.md"):
            out.append(dump(await svc.load_artifact(filename=name, **S)))
        await svc.delete_artifact(filename="report.md", **S)
        out.append(await svc.list_artifact_keys(**S))
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert ours[:3] == [0, 0, 0]


def test_a_file_saved_again_after_delete_starts_at_version_zero(adk_store: TestStore) -> None:
    async def script(svc: BaseArtifactService) -> list[Any]:
        out = [await svc.save_artifact(filename="notes.txt", artifact=text(str(i)), **S) for i in range(3)]
        await svc.delete_artifact(filename="notes.txt", **S)
        await svc.delete_artifact(filename="never.txt", **S)
        out += [
            dump(await svc.load_artifact(filename="notes.txt", **S)),
            await svc.list_versions(filename="notes.txt", **S),
            await svc.list_artifact_versions(filename="notes.txt", **S),
            await svc.get_artifact_version(filename="notes.txt", **S),
            await svc.list_artifact_keys(**S),
        ]
        out.append(await svc.save_artifact(filename="notes.txt", artifact=text("again"), **S))
        out.append(dump(await svc.load_artifact(filename="notes.txt", version=0, **S)))
        out.append(await svc.list_versions(filename="notes.txt", **S))
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert ours[-3] == 0


def test_references_tombstones_and_refusals_match_in_memory(adk_store: TestStore) -> None:
    async def script(svc: BaseArtifactService) -> list[Any]:
        out: list[Any] = []
        await svc.save_artifact(filename="base.txt", artifact=text("target"), **S)
        ref = "artifact://apps/app/users/ann/sessions/s1/artifacts/base.txt/versions/0"
        link = types.Part(file_data=types.FileData(file_uri=ref))
        out.append(await svc.save_artifact(filename="link.txt", artifact=link, **S))
        out.append(dump(await svc.load_artifact(filename="link.txt", **S)))
        loop = "artifact://apps/app/users/ann/sessions/s1/artifacts/loop.txt/versions/0"
        await svc.save_artifact(
            filename="loop.txt", artifact=types.Part(file_data=types.FileData(file_uri=loop)), **S
        )
        out.append(await _error(svc.load_artifact(filename="loop.txt", **S)))
        foreign = "artifact://apps/app/users/bob/sessions/s1/artifacts/base.txt/versions/0"
        out.append(
            await _error(
                svc.save_artifact(
                    filename="x.txt", artifact=types.Part(file_data=types.FileData(file_uri=foreign)), **S
                )
            )
        )
        tombstone = types.Part(inline_data=types.Blob(mime_type="application/octet-stream", data=b""))
        out.append(await svc.save_artifact(filename="base.txt", artifact=tombstone, **S))
        out.append(dump(await svc.load_artifact(filename="base.txt", **S)))
        out.append(dump(await svc.load_artifact(filename="base.txt", version=0, **S)))
        out.append(await _error(svc.save_artifact(filename="x.txt", artifact=text("x"), **U)))
        out.append(
            await _error(
                svc.save_artifact(
                    filename="x.txt", artifact=text("x"), app_name="app", user_id="ann", session_id="user"
                )
            )
        )
        out.append(
            await _error(
                svc.save_artifact(
                    filename="x.txt", artifact=text("x"), app_name="app", user_id="../x", session_id="s"
                )
            )
        )
        out.append(await _error(svc.save_artifact(filename="x.txt", artifact=types.Part(), **S)))
        return out

    theirs, ours = side_by_side(adk_store, script)
    assert ours == theirs
    assert ours[1] == {"text": "target"}


def test_identical_payloads_are_stored_once(tmp_path: Path) -> None:
    with open_test_store("sqlite", tmp_path) as store:
        assert store.url is not None
        url = store.url

        async def run() -> None:
            svc = KeepupArtifactService(url)
            for name in ("a.png", "b.png", "c.png"):
                await svc.save_artifact(filename=name, artifact=png(b"same bytes" * 100), **S)
            await svc.close()

        asyncio.run(run())
        assert len([b for b in store.driver.list_blobs() if b.size == 1000]) == 1


# ------------------------------------------------------------------ savers in several processes
def _save_in_child(url: str, writer: int, count: int, start: Any, out: Any) -> None:
    async def run() -> list[int]:
        svc = KeepupArtifactService(url)
        try:
            return [
                await svc.save_artifact(filename="shared.txt", artifact=text(f"{writer}-{i}"), **S)
                for i in range(count)
            ]
        finally:
            await svc.close()

    start.wait(30)
    try:
        out.put(asyncio.run(run()))
    except Exception as exc:
        out.put(repr(exc))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_savers_in_three_processes_each_get_their_own_versions(backend: str, tmp_path: Path) -> None:
    writers, count = 3, 8
    with open_test_store(backend, tmp_path) as store:
        assert store.url is not None
        url = store.url
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_save_in_child, args=(url, w, count, start, out)) for w in range(writers)]
        for p in procs:
            p.start()
        start.set()
        results = [out.get(timeout=180) for _ in procs]
        for p in procs:
            p.join(60)
        assert all(isinstance(r, list) for r in results), results
        assert sorted(v for r in results for v in r) == list(range(writers * count))

        async def read() -> list[Any]:
            svc = KeepupArtifactService(url)
            try:
                return [
                    (await svc.load_artifact(filename="shared.txt", version=v, **S))
                    for v in range(writers * count)
                ]
            finally:
                await svc.close()

        texts = sorted(p.text for p in asyncio.run(read()) if p is not None)
    assert texts == sorted(f"{w}-{i}" for w in range(writers) for i in range(count))
