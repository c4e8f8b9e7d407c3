"""What the server drivers (PostgreSQL, MySQL/MariaDB, Redis, MongoDB) share: the options they
read from a store URL (``prefix=`` above all), one-line errors with the password removed, and the
re-chunking of blob streams into fixed-size pieces so memory stays bounded."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runtime_core import (
    CorruptionError,
    DriverUnavailableError,
    KeepupError,
    NotFoundError,
    StorageError,
    ValidationError,
)

from runtime_persistence.storage.stores import redact_url, url_secrets

PREFIX_RE = re.compile(r"^[a-z0-9_]{0,32}$")
"""A store prefix: up to 32 characters of ``a-z 0-9 _`` (empty: no prefix)."""

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a server to answer when a store is opened."""


def split_options(url: str, owned: Iterable[str]) -> tuple[str, dict[str, str]]:
    """Split ``url``'s query into the parameters a Keepup driver reads itself (``owned``) and the
    rest, which stay in the returned URL for the client library. A parameter given twice raises
    ValidationError."""
    owned_names = set(owned)
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    mine: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in owned_names:
            if name in mine:
                raise ValidationError(f"the store URL gives {name!r} twice: {redact_url(url)}")
            mine[name] = value
        else:
            kept.append((name, value))
    rebuilt = urlunsplit(parts._replace(query=urlencode(kept)))
    if parts.netloc == "" and url[len(parts.scheme) + 1 :].startswith("//"):
        # urlunsplit drops an empty authority for schemes it does not know ("postgresql:///db"
        # would become "postgresql:/db"): put the "//" back so the client library reads a URL
        rebuilt = f"{parts.scheme}://{rebuilt[len(parts.scheme) + 1 :]}"
    return rebuilt, mine


def check_server_url(url: str, kind: str) -> None:
    """Refuse, with ValidationError, a server store URL that names nothing to connect to
    (``postgresql://``, ``redis://``) or whose port is not a number (``redis://host:notaport``):
    these are mistakes on the command line, not failures of a server."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ValidationError(f"malformed {kind} store URL {redact_url(url)}: {exc}") from None
    if not parts.netloc and parts.path in ("", "/") and not parts.query:
        raise ValidationError(
            f"a {kind} store URL names a server (and a database): "
            f"{parts.scheme}://host/db; got {redact_url(url)}"
        )


def read_password_file(path: str, kind: str) -> str:
    """The password stored in the file ``path`` (its first line; the ``password_file=`` URL
    option of the MySQL and Redis drivers), so a password never has to be on a command line where
    ``ps`` shows it. A file that cannot be read raises ValidationError (it names the path, never
    the content)."""
    try:
        with open(path, encoding="utf-8") as handle:
            line = handle.readline(4096)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(
            f"cannot read the {kind} password file {path!r}: {type(exc).__name__}: {getattr(exc, 'strerror', None) or 'unreadable'}"
        ) from None
    return line.rstrip("\r\n")


def store_prefix(value: object) -> str:
    """Validate a ``prefix=`` value: what keeps two stores on one server apart."""
    if not isinstance(value, str) or not PREFIX_RE.match(value):
        raise ValidationError(
            f"a store prefix is at most 32 characters of a-z, 0-9 and '_'; got {value!r:.60}"
        )
    return value


def merged_options(
    query: Mapping[str, str], options: Mapping[str, Any], allowed: Iterable[str], url: str
) -> dict[str, Any]:
    """URL query options overridden by keyword options; an unknown keyword raises ValidationError."""
    allowed_names = set(allowed)
    unknown = sorted(set(options) - allowed_names)
    if unknown:
        raise ValidationError(
            f"unknown option(s) {', '.join(unknown)} for {redact_url(url)}; "
            f"known: {', '.join(sorted(allowed_names))}"
        )
    merged: dict[str, Any] = dict(query)
    merged.update(options)
    return merged


def int_option(options: Mapping[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    """An integer option between ``low`` and ``high`` (inclusive), or ``default`` when absent."""
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValidationError(f"option {name} must be an integer, got {raw!r:.40}") from None
    if isinstance(raw, bool) or not low <= value <= high:
        raise ValidationError(f"option {name} must be between {low} and {high}, got {raw!r:.40}")
    return value


def float_option(options: Mapping[str, Any], name: str, default: float, *, low: float, high: float) -> float:
    """A number option between ``low`` and ``high`` (inclusive), or ``default`` when absent."""
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValidationError(f"option {name} must be a number, got {raw!r:.40}") from None
    if isinstance(raw, bool) or not low <= value <= high:
        raise ValidationError(f"option {name} must be between {low} and {high}, got {raw!r:.40}")
    return value


def one_line(exc: BaseException, url: str) -> str:
    """The first line of ``exc``'s message, with the URL's passwords (``user:password@`` and
    ``?password=``-like options) replaced by ``***``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text[:300]


def unavailable(kind: str, url: str, exc: BaseException) -> DriverUnavailableError:
    """The error for a server that cannot be reached or refuses us when a store is opened."""
    return DriverUnavailableError(f"cannot open the {kind} store at {redact_url(url)}: {one_line(exc, url)}")


def storage_failure(kind: str, url: str, action: str, exc: BaseException) -> StorageError:
    """The error for a server failure in the middle of an operation (lost connection, server error)."""
    return StorageError(
        f"{kind} {action} failed at {redact_url(url)}: {one_line(exc, url)} "
        "(the operation may or may not have been applied; read to find out)"
    )


def missing_chunk(digest: str, still_stored: bool) -> KeepupError:
    """The error for a blob chunk that is not where it should be while the blob is read:
    NotFoundError when the blob itself is gone (deleted during the read), else CorruptionError."""
    if not still_stored:
        return NotFoundError(f"blob {digest} was deleted while it was being read")
    return CorruptionError(f"blob {digest} is missing a chunk: the stored data was damaged")


class Rechunker:
    """The state of :func:`rechunk`, for a loop that cannot be a plain generator (an async one):
    :meth:`feed` each incoming chunk and emit what it returns, then emit :meth:`tail`."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete pieces ``chunk`` finishes (ValidationError if it is not bytes)."""
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise ValidationError(f"a blob stream yields bytes, got {type(chunk).__name__}")
        size, buffer = self._size, self._buffer
        out: list[bytes] = []
        view = memoryview(chunk).cast("B")
        start = 0
        if buffer:
            take = min(size - len(buffer), len(view))
            buffer += view[:take]
            start = take
            if len(buffer) < size:
                return out
            out.append(bytes(buffer))
            buffer.clear()
        while len(view) - start >= size:
            out.append(bytes(view[start : start + size]))
            start += size
        buffer += view[start:]
        return out

    def tail(self) -> list[bytes]:
        """The last, shorter piece (if any bytes are left)."""
        rest = [bytes(self._buffer)] if self._buffer else []
        self._buffer.clear()
        return rest


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a stream of byte strings into pieces of exactly ``size`` bytes (the last one may be
    shorter; an empty stream yields nothing). Holds at most about ``2 * size`` bytes."""
    cutter = Rechunker(size)
    for chunk in chunks:
        yield from cutter.feed(chunk)
    yield from cutter.tail()


def scan_statements(kv: str, key: str) -> dict[tuple[bool, bool, bool], str]:
    """The scan page query for every ``(reverse, low_inclusive, has_high)``, over table ``kv``,
    with ``key`` as the placeholder of key parameters (``%s`` everywhere else). Parameters:
    namespace, low bound, high bound (when ``has_high``), page size."""
    statements: dict[tuple[bool, bool, bool], str] = {}
    for reverse in (False, True):
        for low_inclusive in (False, True):
            for has_high in (False, True):
                where = f"ns = %s AND k {'>=' if low_inclusive else '>'} {key}"
                if has_high:
                    where += f" AND k < {key}"
                order = "DESC" if reverse else "ASC"
                statements[(reverse, low_inclusive, has_high)] = (
                    f"SELECT k, v, ver FROM {kv} WHERE {where} ORDER BY k {order} LIMIT %s"
                )
    return statements


def pieces(chunk: bytes, size: int) -> Iterator[bytes]:
    """``chunk`` cut into pieces of at most ``size`` bytes (a reader's requested chunk size)."""
    if len(chunk) <= size:
        yield chunk
        return
    view = memoryview(chunk)
    for i in range(0, len(chunk), size):
        yield bytes(view[i : i + size])


def bool_option(options: Mapping[str, Any], name: str) -> bool:
    """A yes/no option (``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``); False when absent."""
    raw = options.get(name)
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValidationError(f"option {name} is a yes/no flag (1 or 0), got {raw!r:.40}")
