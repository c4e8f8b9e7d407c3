"""LangGraph checkpointers on a Keepup store: :class:`KeepupSaver` (sync, with ``a*`` methods
that run it on a worker thread) and :class:`AsyncKeepupSaver` (native async I/O where the
driver has it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from runtime_core import AsyncDriver, Driver
from runtime_persistence import AsyncCheckpoints, Checkpoints, open_store, open_store_async

from keepup_langgraph._async.core import _AsyncSaverCore
from keepup_langgraph._mapping import next_version
from keepup_langgraph._sync.core import _SaverCore

__all__ = ["AsyncKeepupSaver", "KeepupSaver"]


class KeepupSaver(BaseCheckpointSaver[str]):
    """A LangGraph ``BaseCheckpointSaver`` on any Keepup store.

    Build it with :meth:`from_url` (``sqlite:///graph.db``, ``postgresql://…``, ``redis://…``,
    ``mysql://…``, ``file:///dir``, ``memory://``), :meth:`from_runtime` (a ``keepup.Runtime``)
    or from a :class:`runtime_persistence.Checkpoints`. A LangGraph thread is a Keepup thread
    (its ``thread_id`` is the thread's external key), each ``checkpoint_ns`` a namespace of it,
    so ``keepup checkpoint list/show/diff`` see what the graph saved. Pending writes are durable
    when ``put_writes`` returns, even before their checkpoint is stored. A put that extends the
    head does so by compare-and-set (ConflictError if the head moved meanwhile); a put after an
    older checkpoint is recorded as an explicit branch. Thread-safe; the ``a*`` methods run the
    sync ones on a worker thread."""

    def __init__(
        self,
        checkpoints: Checkpoints,
        *,
        serde: SerializerProtocol | None = None,
        driver: Driver | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.checkpoints = checkpoints
        self._core = _SaverCore(checkpoints, self.serde)
        self._owned = driver

    @classmethod
    def from_url(cls, url: str, *, serde: SerializerProtocol | None = None, **options: Any) -> KeepupSaver:
        """A saver on the store at ``url`` (the store's options as keyword arguments); close it
        (or use it as a context manager) to close the store."""
        driver = open_store(url, **options)
        return cls(Checkpoints(driver), serde=serde, driver=driver)

    @classmethod
    def from_runtime(cls, runtime: Any, *, serde: SerializerProtocol | None = None) -> KeepupSaver:
        """A saver on a ``keepup.Runtime``'s checkpoint store (shared with it; closing the
        saver leaves the runtime open)."""
        return cls(runtime.checkpoints, serde=serde)

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> KeepupSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # sync -----------------------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._core.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self._core.list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._core.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._core.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self._core.delete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._core.delete_for_runs(run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._core.copy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._core.prune(thread_ids, strategy=strategy)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)

    # async, on a worker thread --------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: [*self.list(config, filter=filter, before=before, limit=limit)]
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


class AsyncKeepupSaver(BaseCheckpointSaver[str]):
    """The async twin of :class:`KeepupSaver`, on :class:`runtime_persistence.AsyncCheckpoints`
    (native async drivers for PostgreSQL, MySQL and Redis; SQLite and files on worker threads).
    Its sync methods may be called from other threads while its event loop runs (LangGraph's
    ``graph.invoke`` from a worker thread); calling them on the loop's own thread raises."""

    def __init__(
        self,
        checkpoints: AsyncCheckpoints,
        *,
        serde: SerializerProtocol | None = None,
        driver: AsyncDriver | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.checkpoints = checkpoints
        self._core = _AsyncSaverCore(checkpoints, self.serde)
        self._owned = driver
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def from_url(
        cls, url: str, *, serde: SerializerProtocol | None = None, **options: Any
    ) -> AsyncKeepupSaver:
        driver = await open_store_async(url, **options)
        saver = cls(AsyncCheckpoints(driver), serde=serde, driver=driver)
        saver.loop = asyncio.get_running_loop()
        return saver

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.close()
            self._owned = None

    async def __aenter__(self) -> AsyncKeepupSaver:
        self.loop = asyncio.get_running_loop()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _mark_loop(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()

    # async ----------------------------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._mark_loop()
        return await self._core.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        self._mark_loop()
        async for item in self._core.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._mark_loop()
        return await self._core.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._mark_loop()
        await self._core.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._core.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._core.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._core.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._core.prune(thread_ids, strategy=strategy)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)

    # sync, from another thread --------------------------------------------------------------------
    def _run(self, coro: Any) -> Any:
        loop = self.loop
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError(
                "AsyncKeepupSaver's sync methods need its event loop running in another thread"
            )
        try:
            if asyncio.get_running_loop() is loop:
                coro.close()
                raise RuntimeError(
                    "AsyncKeepupSaver's sync methods cannot run on its own event loop: use the a* methods"
                )
        except RuntimeError as exc:
            if "no running event loop" not in str(exc):
                raise
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        result: CheckpointTuple | None = self._run(self.aget_tuple(config))
        return result

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._run(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        result: RunnableConfig = self._run(self.aput(config, checkpoint, metadata, new_versions))
        return result

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._run(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._run(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(self.aprune(thread_ids, strategy=strategy))
