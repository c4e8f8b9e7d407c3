# Generated from packages/keepup-langgraph/src/keepup_langgraph/_async/core.py by scripts/gen_sync.py: edit that file and rerun the script.
"""What both savers do, written once as async code over :class:`Checkpoints`;
``_sync/core.py`` (over :class:`Checkpoints`) is generated from it by ``scripts/gen_sync.py``."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol
from runtime_core import Checkpoint as KeepupCheckpoint
from runtime_core import ConflictError, NotFoundError, Thread
from runtime_persistence import Checkpoints

from keepup_langgraph._mapping import (
    SPECIAL_WRITES,
    config_of,
    encode_state,
    encode_typed,
    metadata_for,
    parts,
    to_tuple,
)

__all__ = ["_SaverCore"]

_PAGE = 100


class _SaverCore:
    """LangGraph's saver operations over a Keepup checkpoint store (see ``_mapping``)."""

    def __init__(self, checkpoints: Checkpoints, serde: SerializerProtocol) -> None:
        self.checkpoints = checkpoints
        self.serde = serde
        self._threads: dict[str, str] = {}  # LangGraph thread id -> Keepup thread id
        # (LangGraph thread id, namespace) -> (Keepup id, LangGraph id) of the last checkpoint
        # this saver made the head there: a put after it extends it without reading the head
        self._heads: dict[tuple[str, str], tuple[str, str]] = {}

    def _thread_id(self, thread_key: str, *, create: bool) -> str | None:
        cached = self._threads.get(thread_key)
        if cached is not None:
            return cached
        thread: Thread | None
        if create:
            thread = self.checkpoints.get_or_create_thread(thread_key)
        else:
            thread = self.checkpoints.find_thread(thread_key)
        if thread is None:
            return None
        if len(self._threads) > 4096:
            self._threads.clear()
        self._threads[thread_key] = thread.id
        return thread.id

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_key, namespace, checkpoint_key = parts(config)
        for _ in range(2):
            thread_id = self._thread_id(thread_key, create=False)
            if thread_id is None:
                return None
            try:
                if checkpoint_key is not None:
                    cp = self.checkpoints.find_by_key(thread_id, checkpoint_key, namespace=namespace)
                else:
                    cp = self.checkpoints.latest(thread_id, namespace=namespace)
            except NotFoundError:  # the thread was deleted (perhaps by another process)
                self._threads.pop(thread_key, None)
                continue
            return None if cp is None else to_tuple(self.serde, thread_key, cp)
        return None

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: Any,
    ) -> RunnableConfig:
        """Save ``checkpoint`` after the one ``config`` names. When that one is the head of its
        namespace the save extends the head by compare-and-set (a writer that moved the head
        between this read of it and the write makes this one fail with ConflictError rather
        than fork silently); when it is an older one (``update_state`` from the past) the save
        is an explicit branch from it."""
        thread_key, namespace, parent_key = parts(config)
        state = encode_state(self.serde, checkpoint, parent_key)
        md = metadata_for(config, metadata)
        key = str(checkpoint["id"])
        last = self._heads.pop((thread_key, namespace), None)
        thread_id = self._threads.get(thread_key)
        if last is not None and thread_id is not None and last[1] == parent_key:
            try:  # the head is most likely still the checkpoint this saver saved last
                cp = self.checkpoints.save(
                    thread_id, state, parent_id=last[0], metadata=md, namespace=namespace, external_key=key
                )
            except (ConflictError, NotFoundError):
                pass  # moved or deleted meanwhile: decide again from the stored head, below
            else:
                self._remember_head(thread_key, namespace, cp.id, key)
                return config_of(thread_key, namespace, key)
        for attempt in range(2):
            thread_id = self._thread_id(thread_key, create=True)
            assert thread_id is not None
            try:
                head = self.checkpoints.head_key(thread_id, namespace=namespace)
                if head is not None and parent_key is not None and head[1] == parent_key:
                    cp = self.checkpoints.save(
                        thread_id,
                        state,
                        parent_id=head[0],
                        metadata=md,
                        namespace=namespace,
                        external_key=key,
                    )
                elif head is None and parent_key is None:
                    cp = self.checkpoints.save(
                        thread_id, state, metadata=md, namespace=namespace, external_key=key
                    )
                else:
                    parent = None
                    if parent_key is not None:
                        parent = self.checkpoints.find_by_key(thread_id, parent_key, namespace=namespace)
                    cp = self.checkpoints.save(
                        thread_id,
                        state,
                        branch_from=None if parent is None else parent.id,
                        new_root=parent is None,
                        metadata=md,
                        namespace=namespace,
                        external_key=key,
                    )
            except NotFoundError:
                self._threads.pop(thread_key, None)
                if attempt:
                    raise
                continue
            self._remember_head(thread_key, namespace, cp.id, key)
            break
        return config_of(thread_key, namespace, key)

    def _remember_head(self, thread_key: str, namespace: str, checkpoint_id: str, key: str) -> None:
        if len(self._heads) > 4096:
            self._heads.clear()
        self._heads[(thread_key, namespace)] = (checkpoint_id, key)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_key, namespace, checkpoint_key = parts(config)
        if checkpoint_key is None:
            raise NotFoundError("put_writes needs configurable.checkpoint_id")
        encoded = [(channel, encode_typed(self.serde, value)) for channel, value in writes]
        for attempt in range(2):
            thread_id = self._thread_id(thread_key, create=True)
            assert thread_id is not None
            try:
                self.checkpoints.put_keyed_writes(
                    thread_id,
                    checkpoint_key,
                    task_id,
                    encoded,
                    namespace=namespace,
                    task_path=task_path,
                    special=SPECIAL_WRITES,
                )
                return
            except NotFoundError:
                self._threads.pop(thread_key, None)
                if attempt:
                    raise

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        if limit is not None and limit <= 0:
            return
        if config is None:
            everything = self._list_all(filter, before, limit)
            yield from everything
            return
        thread_key, namespace, checkpoint_key = parts(config)
        thread_id = self._thread_id(thread_key, create=False)
        if thread_id is None:
            return
        conf = config.get("configurable") or {}
        try:
            if checkpoint_key is not None:
                cp = self.checkpoints.find_by_key(thread_id, checkpoint_key, namespace=namespace)
                if cp is not None and _matches(cp, filter, before):
                    yield to_tuple(self.serde, thread_key, cp)
                return
            namespaces = [namespace] if "checkpoint_ns" in conf else self.checkpoints.namespaces(thread_id)
            found: builtins.list[KeepupCheckpoint] = []
            for ns in namespaces:
                found += self._list_namespace(thread_id, ns, filter, before, limit)
        except NotFoundError:
            self._threads.pop(thread_key, None)
            return
        found.sort(key=lambda cp: cp.id, reverse=True)
        for cp in found[:limit] if limit is not None else found:
            yield to_tuple(self.serde, thread_key, cp)

    def _list_namespace(
        self,
        thread_id: str,
        namespace: str,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> builtins.list[KeepupCheckpoint]:
        before_id: str | None = None
        before_key: str | None = None
        if before is not None:
            before_key = parts(before)[2]
            if before_key is not None:
                bound = self.checkpoints.find_by_key(thread_id, before_key, namespace=namespace)
                if bound is not None:
                    before_id, before_key = bound.id, None
        out: builtins.list[KeepupCheckpoint] = []
        while limit is None or len(out) < limit:
            want = _PAGE if limit is None or before_key is not None else min(_PAGE, limit - len(out))
            page = self.checkpoints.list(
                thread_id, namespace=namespace, metadata=filter, before=before_id, limit=want
            )
            out += [cp for cp in page if before_key is None or (cp.external_key or "") < before_key]
            if len(page) < want:
                break
            before_id = page[-1].id
        return out if limit is None else out[:limit]

    def _list_all(
        self, filter: dict[str, Any] | None, before: RunnableConfig | None, limit: int | None
    ) -> Iterator[CheckpointTuple]:
        before_id: str | None = None
        if before is not None:
            thread_key, namespace, before_key = parts(before)
            thread_id = self._thread_id(thread_key, create=False)
            if thread_id is not None and before_key is not None:
                bound = self.checkpoints.find_by_key(thread_id, before_key, namespace=namespace)
                before_id = None if bound is None else bound.id
        count = 0
        keys: dict[str, str | None] = {}
        while True:
            page = self.checkpoints.list_all(metadata=filter, before=before_id, limit=_PAGE)
            for cp in page:
                if cp.thread_id not in keys:
                    keys[cp.thread_id] = (self.checkpoints.get_thread(cp.thread_id)).external_key
                owner = keys[cp.thread_id]
                if cp.external_key is None or owner is None:
                    continue  # a checkpoint Keepup saved for itself, not LangGraph's
                yield to_tuple(self.serde, owner, cp)
                count += 1
                if limit is not None and count >= limit:
                    return
            if len(page) < _PAGE:
                return
            before_id = page[-1].id

    def delete_thread(self, thread_key: str) -> None:
        self._heads = {k: v for k, v in self._heads.items() if k[0] != str(thread_key)}
        thread = self.checkpoints.find_thread(str(thread_key))
        self._threads.pop(str(thread_key), None)
        if thread is not None:
            with suppress(NotFoundError):  # deleted meanwhile
                self.checkpoints.delete_thread(thread.id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        for run_id in run_ids:
            ids = self.checkpoints.ids_by_metadata("run_id", str(run_id))
            self.checkpoints.delete_checkpoints(ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        thread = self.checkpoints.find_thread(str(source_thread_id))
        if thread is None:
            return
        self.checkpoints.copy_thread(thread.id, external_key=str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        for thread_key in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_key)
                continue
            thread = self.checkpoints.find_thread(str(thread_key))
            if thread is None:
                continue
            for namespace in self.checkpoints.namespaces(thread.id):
                self.checkpoints.prune(thread.id, keep_last=1, namespace=namespace)


def _matches(cp: KeepupCheckpoint, filter: dict[str, Any] | None, before: RunnableConfig | None) -> bool:
    if filter and not all(k in cp.metadata and cp.metadata[k] == v for k, v in filter.items()):
        return False
    if before is not None:
        before_key = parts(before)[2]
        if before_key is not None and (cp.external_key or "") >= before_key:
            return False
    return True
