"""``keepup artifact``: list, versions, get, put and delete versioned artifacts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from runtime_core import NotFoundError, TypedArtifact, ValidationError
from runtime_persistence.storage.private import create_private_file

from keepup._cli.context import runtime_of
from keepup._cli.ids import THREAD, resolve_arg
from keepup._cli.options import JsonOption, SinceOption, UntilOption, YesOption, confirm, within
from keepup._cli.rendering import Column, out_console, print_json, table, when
from keepup._cli.shapes import artifact_json

__all__ = ["app"]

app = typer.Typer(
    help="Artifacts: versioned files a run produced (reports, images, diffs).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ScopeArg = Annotated[
    str,
    typer.Argument(
        metavar="SCOPE",
        help="Scope: a thread id, a session, a user… (to read, a thread id may be shortened to a unique "
        "prefix of 6+ characters when no scope has that name).",
    ),
]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Key: a relative path like reports/tests.json.")]
VersionOpt = Annotated[
    int | None, typer.Option("--version", "-v", min=0, help="A version number (default: the latest).")
]


@app.command("list")
def list_(
    ctx: typer.Context,
    scope: ScopeArg,
    prefix: Annotated[str, typer.Option("--prefix", help="Only keys starting with this.")] = "",
    json_: JsonOption = False,
) -> None:
    """List the artifacts of a scope with their latest version."""
    store = runtime_of(ctx).artifacts
    scope = _scope(ctx, scope)
    latest = [store.info(scope, key) for key in store.keys(scope, prefix)]
    if json_:
        print_json({"scope": scope, "artifacts": [artifact_json(v) for v in latest]})
        return
    if not latest:
        out_console().print(f"no artifacts in scope {scope}")
        return
    table(
        f"Artifacts of {scope}",
        [
            Column("key", 100, wrap=False),
            Column("latest", 90, wrap=False),
            Column("type", 50),
            Column("size", 60, wrap=False),
            Column("created", 40),
        ],
        [
            (
                v.key,
                v.version,
                (v.artifact_type or v.media_type) + (" (quarantined)" if v.quarantined else ""),
                v.size,
                when(v.created_at),
            )
            for v in latest
        ],
    )


@app.command("versions")
def versions(
    ctx: typer.Context,
    scope: ScopeArg,
    key: KeyArg,
    since: SinceOption = None,
    until: UntilOption = None,
    json_: JsonOption = False,
) -> None:
    """List every version of one artifact, oldest first (--since/--until: by creation time)."""
    scope = _scope(ctx, scope)
    found = within(runtime_of(ctx).artifacts.versions(scope, key), lambda v: v.created_at, since, until)
    if json_:
        print_json({"scope": scope, "key": key, "versions": [artifact_json(v) for v in found]})
        return
    if not found:
        out_console().print(f"no versions of {key} in scope {scope}")
        return
    table(
        f"{key} in {scope}",
        [
            Column("version", 100, wrap=False),
            Column("digest", 30, wrap=False),
            Column("size", 60, wrap=False),
            Column("type", 40),
            Column("created", 80),
            Column("quarantined", 50),
        ],
        [
            (
                v.version,
                v.digest[:12],
                v.size,
                v.artifact_type or v.media_type,
                when(v.created_at),
                v.quarantine_reason or "-",
            )
            for v in found
        ],
    )


@app.command("get")
def get(
    ctx: typer.Context,
    scope: ScopeArg,
    key: KeyArg,
    version: VersionOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write the content to FILE.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Write an artifact's content to stdout (or --output FILE); with --json print its record and,
    when it is UTF-8 text, its text."""
    scope = _scope(ctx, scope)
    with _found(scope, key, version):
        info, chunks = runtime_of(ctx).artifacts.open(scope, key, version)
    if output is not None:
        create_private_file(output)  # a new file is 0600 (it may hold what the store keeps private)
        with output.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
    if json_:
        text: str | None = None
        if output is None:
            data = b"".join(chunks)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        print_json(
            {"artifact": artifact_json(info), "output": None if output is None else str(output), "text": text}
        )
        return
    if output is not None:
        sys.stderr.write(f"wrote {info.key} version {info.version} ({info.size} bytes) to {output}\n")
        return
    stream = sys.stdout.buffer
    for chunk in chunks:
        stream.write(chunk)
    stream.flush()


@app.command("put")
def put(
    ctx: typer.Context,
    scope: ScopeArg,
    key: KeyArg,
    file: Annotated[str, typer.Argument(metavar="FILE", help="The content, or - for standard input.")],
    media_type: Annotated[
        str, typer.Option("--media-type", help="Media type of the content.")
    ] = "application/octet-stream",
    type_: Annotated[
        str | None,
        typer.Option(
            "--type", metavar="NAME@VERSION", help="Store FILE (a JSON object) as a typed artifact."
        ),
    ] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", metavar="NAME=VALUE", help="Metadata (repeatable).")
    ] = None,
    allow_unregistered: Annotated[
        bool,
        typer.Option(
            "--allow-unregistered",
            help="Store a --type no schema is registered for (it is kept, quarantined).",
        ),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Store FILE as the next version of KEY in SCOPE."""
    metadata = _metadata(meta or [])
    store = runtime_of(ctx).artifacts
    if type_ is not None and not allow_unregistered and type_ not in store.schemas:
        known = ", ".join(store.schemas.types()) or "none"
        raise ValidationError(
            f"no schema is registered for artifact type {type_!r:.80} (registered: {known}); "
            "pass --allow-unregistered to store it anyway, quarantined"
        )
    if type_ is not None:
        body = _read(file)
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValidationError(f"a typed artifact's FILE must hold a JSON object: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValidationError("a typed artifact's FILE must hold a JSON object")
        stored = store.put_typed(scope, key, TypedArtifact(type_, parsed), metadata=metadata)
    elif file == "-":
        stored = store.put(scope, key, _stdin_chunks(), media_type=media_type, metadata=metadata)
    else:
        stored = store.put(scope, key, _file_chunks(Path(file)), media_type=media_type, metadata=metadata)
    if json_:
        print_json({"artifact": artifact_json(stored)})
        return
    line = f"stored {stored.key} version {stored.version} in {stored.scope} ({stored.size} bytes)"
    if stored.quarantined:
        line += f"; QUARANTINED: {stored.quarantine_reason}"
    out_console().print(line, markup=False)


@app.command("delete")
def delete(
    ctx: typer.Context,
    scope: ScopeArg,
    key: KeyArg,
    version: Annotated[
        int | None, typer.Option("--version", "-v", min=0, help="Delete only this version (default: all).")
    ] = None,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Delete one version of an artifact, or all of them."""
    store = runtime_of(ctx).artifacts
    scope = _scope(ctx, scope)
    with _found(scope, key, version):
        store.info(scope, key, version)  # NotFoundError before asking
    what = f"version {version} of {key}" if version is not None else f"every version of {key}"
    confirm(f"Delete {what} in scope {scope}?", yes=yes)
    count = store.delete(scope, key, version)
    if json_:
        print_json({"scope": scope, "key": key, "version": version, "deleted": count})
        return
    out_console().print(f"deleted {count} version(s) of {key} in {scope}", markup=False)


def _scope(ctx: typer.Context, scope: str) -> str:
    """The scope a reading command means: ``scope`` itself when it holds an artifact, else the
    thread whose id it names in any case or as a unique prefix (tables show thread ids that way;
    an ambiguous prefix lists the candidates), else ``scope`` as typed (the command then says it
    holds nothing)."""
    if runtime_of(ctx).artifacts.keys(scope):
        return scope
    try:
        return resolve_arg(ctx, THREAD, scope)
    except (ValidationError, NotFoundError):
        return scope


@contextmanager
def _found(scope: str, key: str, version: int | None) -> Iterator[None]:
    """Say plainly which artifact is missing (the library's wording is "has no any version")."""
    try:
        yield
    except NotFoundError:
        if version is None:
            raise NotFoundError(f"no artifact {key!r} in scope {scope!r}") from None
        raise NotFoundError(f"artifact {key!r} has no version {version} in scope {scope!r}") from None


def _metadata(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValidationError(f"--meta takes NAME=VALUE, got {pair!r:.80}")
        out[name] = value
    return out


def _read(file: str) -> bytes:
    return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


def _stdin_chunks(size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := sys.stdin.buffer.read(size):
        yield chunk
