"""Export threads of checkpoints to one portable, versioned, checksummed file, and import them.

The format is documented in ``docs/export-format.md``. In short: the 8 bytes ``KEEPUPX1``, then
frames, each a 4-byte big-endian length followed by one Keepup envelope (format version, codec,
length, payload, BLAKE2b checksum) whose MessagePack payload is a map with a kind ``k``: a
``header``, then per thread a ``thread`` frame, the ``blob`` frames its checkpoints need (each
blob once per file), its ``checkpoint`` frames in order (with their pending writes), ``pin`` and
``fork`` frames and a ``thread_end``; last an ``end`` frame holding the frame count and the
SHA-256 of every byte before it.

Both directions stream: memory holds one frame (one checkpoint record, one blob, or one part
of a blob or snapshot pack over 16 MiB, which is written as ``part`` frames) at a time, plus
the set of blob digests already written; an import refuses a frame over its ``max_frame`` cap
(64 MiB) before reading it and puts parts together in a temporary file. Import writes bottom-up like a save (blobs, then
records, then the head, then the thread record last), so a thread appears only once all of its
frames were read and verified; a damaged or truncated file raises CorruptionError and leaves
only unreferenced records and blobs behind, which gc removes.

Sessions, tasks and events travel as sections after the threads when asked (frame kinds
``session``, ``messages``, ``run``, ``task``, ``task_log``, ``event``; the header's ``with``
names them and the file is version 3): the repositories stand above checkpoints, so they supply
the sections (:class:`AsyncExportSection`) through
:mod:`runtime_persistence.session.transfer`, whose ``export_all`` and ``import_all`` are these
functions with them.

Written once as async code (``_async/export.py``): :func:`export_threads` and
:func:`import_threads` take a :class:`Checkpoints`, their async twins
:func:`export_threads_async` and :func:`import_threads_async` an :class:`AsyncCheckpoints` (file
work runs in a worker thread).
"""

from runtime_persistence.checkpoint._async.export import AsyncExportSection
from runtime_persistence.checkpoint._async.export import export_threads as export_threads_async
from runtime_persistence.checkpoint._async.export import import_threads as import_threads_async
from runtime_persistence.checkpoint._export_format import EXPORT_MAGIC, EXPORT_VERSION, ExportReport, Progress
from runtime_persistence.checkpoint._sync.export import ExportSection, export_threads, import_threads

__all__ = [
    "EXPORT_MAGIC",
    "EXPORT_VERSION",
    "AsyncExportSection",
    "ExportReport",
    "ExportSection",
    "Progress",
    "export_threads",
    "export_threads_async",
    "import_threads",
    "import_threads_async",
]
