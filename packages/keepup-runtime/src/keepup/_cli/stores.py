"""``keepup store``: what the store is, migrating its schema, collecting garbage, and a doctor
that checks everything Keepup needs and says what to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import typer
from runtime_core import DriverUnavailableError, KeepupError, NotFoundError, StorageError, new_id
from runtime_persistence.storage.private import PRIVATE_DIR, make_private, too_open
from runtime_persistence.storage.stores import open_store

from keepup._cli.context import read_only_url, runtime_of, shown_url, store_option_of
from keepup._cli.exit_codes import Unhealthy
from keepup._cli.options import JsonOption, YesOption, confirm, parse_duration
from keepup._cli.rendering import (
    Column,
    err_console,
    escape,
    fields,
    out_console,
    print_json,
    progress,
    table,
)
from keepup._cli.shapes import gc_json
from keepup.runtime import open_runtime, resolved_store_url

__all__ = ["app"]

app = typer.Typer(
    help="The store: info, schema migrations, garbage collection, health checks.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_MIN_GIT = (2, 25)
_DISK_WARN = 1 << 30
_DISK_FAIL = 100 << 20
_PROBE_NAMESPACE = "keepup-doctor"

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    """One doctor check: its status, what was found and, when not ok, what to do."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@app.command("info")
def info(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Show which store is in use and what it holds."""
    runtime = runtime_of(ctx)
    driver = runtime.driver
    data: dict[str, Any] = {
        "url": shown_url(driver.url),
        "driver": type(driver).__name__,
        "home": str(runtime.home),
        "atomic_batch": driver.atomic_batch,
        "max_value_size": driver.max_value_size,
        "schema": _schema_json(driver),
        "holds": _holdings(driver, runtime.home),
    }
    if json_:
        print_json(data)
        return
    rows = [(k.replace("_", " "), v) for k, v in data.items() if k not in ("schema", "holds")]
    schema = data["schema"]
    if isinstance(schema, dict):
        rows.append(("schema", f"version {schema['current']} (this keepup knows {schema['latest']})"))
    fields("Store", rows)
    table(
        "What it holds",
        [Column("kind", 100, wrap=False), Column("count", 90, wrap=False), Column("bytes", 80, wrap=False)],
        [(kind, held["count"], _size(held["bytes"])) for kind, held in data["holds"].items()],
    )


def _holdings(driver: Any, home: Path) -> dict[str, dict[str, int]]:
    """Counts and bytes per kind of record (the stored records' own bytes; blobs their size;
    snapshots the shadow repositories under the home, and their bytes on disk)."""
    from runtime_persistence.artifacts import ARTIFACT_NS
    from runtime_persistence.checkpoints import CKPT_ID_NS, CKPT_NS, THREAD_NS
    from runtime_persistence.events import EVENT_NS
    from runtime_persistence.runs import RUN_NS
    from runtime_persistence.sessions import SESSION_NS
    from runtime_persistence.tasks import TASK_NS

    def records(namespace: str) -> tuple[int, int]:
        count = size = 0
        for entry in driver.scan(namespace):
            count += 1
            size += len(entry.value)
        return count, size

    out: dict[str, dict[str, int]] = {}
    threads = records(THREAD_NS)
    out["threads"] = {"count": threads[0], "bytes": threads[1]}
    checkpoints = records(CKPT_NS)
    out["checkpoints"] = {"count": records(CKPT_ID_NS)[0], "bytes": checkpoints[1]}
    blob_count = blob_bytes = 0
    for blob in driver.list_blobs():
        blob_count += 1
        blob_bytes += blob.size
    out["blobs"] = {"count": blob_count, "bytes": blob_bytes}
    for kind, namespace in (
        ("artifact versions", ARTIFACT_NS),
        ("runs", RUN_NS),
        ("sessions", SESSION_NS),
        ("tasks", TASK_NS),
        ("events", EVENT_NS),
    ):
        count, size = records(namespace)
        out[kind] = {"count": count, "bytes": size}
    shadow = home / "shadow"
    repos = [p for p in shadow.iterdir() if p.is_dir()] if shadow.is_dir() else []
    disk = sum(
        f.stat().st_size for repo in repos for f in repo.rglob("*") if f.is_file() and not f.is_symlink()
    )
    out["snapshot repositories"] = {"count": len(repos), "bytes": disk}
    return out


def _size(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


_SQL_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb"})


@runtime_checkable
class _Migrating(Protocol):
    """A driver with a recorded schema (the SQL drivers)."""

    def schema_status(self) -> Any: ...


def _schema_json(driver: object) -> dict[str, Any] | None:
    if not isinstance(driver, _Migrating):
        return None
    status = driver.schema_status()
    return {"current": int(status.current), "latest": int(status.latest)}


@app.command("migrate")
def migrate(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Bring the store's schema up to date (SQL stores; opening a store read-write does it too,
    under a lock, so two processes never migrate twice)."""
    url = resolved_store_url(store_option_of(ctx))
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    behind = False
    if scheme in _SQL_SCHEMES:
        try:
            open_store(url, read_only=True).close()
        except (StorageError, NotFoundError):
            behind = True  # a read-only open refuses a store that needs migrating, or is not there yet
    runtime = runtime_of(ctx)  # opening read-write migrates
    schema = _schema_json(runtime.driver)
    data = {"url": runtime.driver.url, "schema": schema, "migrated": behind and schema is not None}
    if json_:
        print_json(data)
        return
    console = out_console()
    if schema is None:
        console.print(
            f"{runtime.driver.url} has no schema to migrate ({type(runtime.driver).__name__})", markup=False
        )
    elif data["migrated"]:
        console.print(f"migrated {runtime.driver.url} to schema version {schema['current']}", markup=False)
    else:
        console.print(
            f"{runtime.driver.url} is up to date (schema version {schema['current']})", markup=False
        )


@app.command("gc")
def gc(
    ctx: typer.Context,
    grace: Annotated[
        str, typer.Option("--grace", metavar="AGE", help="Never collect anything younger than AGE.")
    ] = "1h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be collected.")] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Collect blobs and records nothing references any more (older than --grace)."""
    age = parse_duration(grace)
    runtime = runtime_of(ctx)
    if not dry_run:
        confirm(f"Collect unreferenced data older than {grace} in {runtime.driver.url}?", yes=yes)
    with progress("collecting garbage", enabled=not json_) as update:
        update(0, None)
        report = runtime.gc(grace=age, dry_run=dry_run)
    if json_:
        print_json(gc_json(report))
        return
    verb = "would free" if report.dry_run else "freed"
    out_console().print(
        f"{verb} {report.bytes_freed} bytes: {report.blobs_removed} blobs, {report.records_removed} records; "
        f"{report.blobs_kept_young} unreferenced blobs younger than {grace} kept"
    )


@app.command("doctor")
def doctor(
    ctx: typer.Context,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix", help="Repair what can be repaired: take group and other permissions off Keepup's files."
        ),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Check the store, the git binary, permissions (modes: nothing readable by other users) and
    free disk; say what to do about each problem. --fix repairs modes. Exits 15 when a check fails."""
    from keepup.runtime import keepup_home

    home = keepup_home()
    store = store_option_of(ctx)
    checks = [
        _check_home(home),
        _check_store(store),
        _check_modes(home, store, fix=fix),
        _check_git(),
        _check_writable("shadow snapshots", home / "shadow"),
        _check_disk(home),
    ]
    healthy = all(c.status != "fail" for c in checks)
    if json_:
        print_json({"ok": healthy, "checks": checks})
    else:
        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
        console = out_console()
        for c in checks:
            console.print(f"{marks[c.status]:>14}  [bold]{escape(c.name)}[/]: {escape(c.detail)}")
            if c.fix:
                console.print(f"{'':>6}  → {escape(c.fix)}")
    if not healthy:
        failed = ", ".join(c.name for c in checks if c.status == "fail")
        raise Unhealthy(f"store doctor: {failed} failed; see the fixes above")
    if not json_:
        err_console().print("everything Keepup needs is in place")


def _check_home(home: Path) -> Check:
    try:
        home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "home",
            "fail",
            f"{home} is not writable: {exc.strerror or exc}",
            f"fix the permissions of {home}, or point KEEPUP_HOME at a folder you can write",
        )
    return Check("home", "ok", str(home))


_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _private_paths(home: Path, url: str) -> list[Path]:
    """The paths that must be private: the home and what Keepup keeps in it (the default store and
    its side files, the demo's folders, the shadow folder), and a local store given by URL (a
    SQLite file and its side files, or every file and folder of a file store). Workspace files are
    the workspace's own business and are not listed."""
    paths = [home, home / "demo", home / "shadow"]
    if (home / "demo").is_dir():
        paths += sorted((home / "demo").iterdir())
    paths += [home / f"keepup.db{suffix}" for suffix in _SQLITE_SIDE_FILES]
    from keepup.runtime import keyring_path

    paths.append(keyring_path(None, home))  # the keys of an encrypted store
    scheme, _, rest = url.partition("://")
    location = rest.split("?", 1)[0]
    if scheme.lower() == "sqlite" and location and location != ":memory:":
        paths += [Path(f"{location}{suffix}") for suffix in _SQLITE_SIDE_FILES]
    elif scheme.lower() == "file" and location and Path(location).is_dir():
        root = Path(location)
        paths += [root, *root.rglob("*")]
    unique: dict[Path, None] = {}
    for path in paths:
        unique.setdefault(path.absolute(), None)
    return list(unique)


def _check_modes(home: Path, store: str | None, *, fix: bool) -> Check:
    """Issue 11, hole 7: nothing of Keepup's may be readable by other local users."""
    try:
        found = too_open(_private_paths(home, resolved_store_url(store)))
        if not found:
            return Check("permissions", "ok", f"{home} and the store are private (no group or other access)")
        listing = ", ".join(f"{path} ({oct(mode)})" for path, mode in found[:20])
        if len(found) > 20:
            listing += f" and {len(found) - 20} more"
        if fix:
            for path, _ in found:
                make_private(path)
            return Check("permissions", "ok", f"repaired {len(found)} path(s) too open: {listing}")
    except OSError as exc:
        return Check(
            "permissions", "fail", f"cannot check or repair modes: {exc.strerror or exc}", "run as the owner"
        )
    return Check(
        "permissions",
        "fail",
        f"readable or writable by other local users: {listing}",
        "run `keepup store doctor --fix` to take group and other permissions off them",
    )


def _check_writable(name: str, folder: Path) -> Check:
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if os.access(probe, os.W_OK | os.X_OK):
        return Check(name, "ok", f"{folder} can be written")
    return Check(
        name,
        "fail",
        f"{probe} is not writable, so {folder} cannot hold snapshots",
        f"fix the permissions of {probe}, or point KEEPUP_HOME at a folder you can write",
    )


def _check_store(url: str | None) -> Check:
    try:
        with open_runtime(url) as runtime:
            driver = runtime.driver
            key = f"probe-{new_id()}"
            driver.put(_PROBE_NAMESPACE, key, b"ok", if_absent=True)
            entry = driver.get(_PROBE_NAMESPACE, key)
            driver.delete(_PROBE_NAMESPACE, key)
            if entry is None or entry.value != b"ok":
                return Check(
                    "store",
                    "fail",
                    f"{driver.url}: a value written was not read back",
                    "the store is not keeping writes; check the backend's logs and disk",
                )
            return Check("store", "ok", f"{driver.url} ({type(driver).__name__}) reads and writes")
    except DriverUnavailableError as exc:
        fix = (
            f"install the driver: pip install 'runtime-persistence[{exc.extra}]'"
            if exc.extra
            else "check the URL (scheme, host, port) and that the server is running"
        )
        return Check("store", "fail", _one_line(exc), fix)
    except KeepupError as exc:
        return Check("store", "fail", _one_line(exc), "check the store URL and the backend's logs")
    except OSError as exc:
        return Check(
            "store", "fail", _one_line(exc), "check the permissions and free space of the store's folder"
        )
    except Exception as exc:  # the doctor reports every failure instead of crashing on it
        return Check(
            "store",
            "fail",
            f"{type(exc).__name__}: {_one_line(exc)}",
            "reinstall keepup-runtime; if it persists, report it with this message",
        )


def _check_git() -> Check:
    git = shutil.which("git")
    install = "install git 2.25 or newer (e.g. `apt install git`, `brew install git`)"
    if git is None:
        return Check("git", "fail", "no git binary on PATH: workspace snapshots need it", install)
    try:
        out = subprocess.run(
            [git, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("git", "fail", f"{git} --version failed: {exc}", install)
    match = re.search(r"(\d+)\.(\d+)", out)
    version = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if version < _MIN_GIT:
        return Check("git", "fail", f"{out.strip()} is older than 2.25", install)
    return Check("git", "ok", f"{out.strip()} at {git}")


def _check_disk(home: Path) -> Check:
    probe = home
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / (1 << 30):.1f} GiB free at {probe}"
    if free < _DISK_FAIL:
        return Check("disk", "fail", detail, "free some disk space: writes will start failing")
    if free < _DISK_WARN:
        return Check(
            "disk", "warn", detail, "free some disk space soon; `keepup store gc` reclaims unused blobs"
        )
    return Check("disk", "ok", detail)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# ``keepup store encrypt`` ----------------------------------------------------------------------


def _read_key(spec: str, what: str) -> tuple[str, bytes]:
    """``ID=FILE`` -> (key id, the 32-byte key in FILE: raw, 64 hex digits or base64)."""
    from runtime_core import ValidationError
    from runtime_persistence.encryption import decode_key

    key_id, sep, file = spec.partition("=")
    if not sep or not key_id or not file:
        raise ValidationError(
            f"{what} is ID=FILE (a key id, then the file holding the key), got {spec!r:.80}"
        )
    try:
        raw = Path(file).expanduser().read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read the key file {file}: {exc.strerror or exc}") from None
    return key_id, decode_key(raw, f"the key file {file}")


@app.command("encrypt")
def encrypt(
    ctx: typer.Context,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="ID=FILE",
            help="The key to encrypt with: its id (stored in each record) and the file holding it "
            "(32 raw bytes, 64 hex digits or base64). Never give the key itself on the command line. "
            "Default: the keyring's active key (--keyring, $KEEPUP_KEYRING or keyring.toml in the "
            "home), its other keys being the old ones.",
        ),
    ] = None,
    old_key: Annotated[
        list[str] | None,
        typer.Option(
            "--old-key",
            metavar="ID=FILE",
            help="A key records are encrypted with now (to re-encrypt them under --key). Repeatable.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be rewritten.")] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Rewrite every record and checkpoint blob of the store encrypted under a key.

    Records are bound to their place; blobs get new names and the records naming them are
    relinked; plaintext blobs no record names are removed, and a SQLite store is vacuumed. Run it
    while nothing else writes the store. Resumable: what is done is left alone, so after an
    interruption run it again. Afterwards the store is read with that key (plaintext is then
    refused)."""
    from runtime_core import CorruptionError
    from runtime_persistence import encrypt_store
    from runtime_persistence.encryption import scrub_sqlite_store

    ring = _encrypt_keyring(ctx, key, old_key or [])
    new_id_ = ring.active_id
    url = resolved_store_url(store_option_of(ctx))
    driver = open_store(url)
    try:
        if not dry_run:
            confirm(
                f"Rewrite every record of {_redact(driver.url)} encrypted under key {new_id_!r}?", yes=yes
            )
        with progress("encrypting records", enabled=not json_) as update:
            update(0, None)
            report = encrypt_store(
                driver,
                ring,
                dry_run=dry_run,
                progress=lambda r: update(r.seen + r.records_relinked, None),
            )
    finally:
        driver.close()
    if not dry_run:  # SQLite keeps old pages in its file and WAL: rebuild it without them
        scrub_sqlite_store(url)
    data = {
        "url": _redact(url),
        "key_id": report.key_id,
        "dry_run": report.dry_run,
        "rewritten": report.rewritten,
        "already": report.already,
        "not_envelopes": report.not_envelopes,
        "blobs_rewritten": report.blobs_rewritten,
        "blobs_already": report.blobs_already,
        "records_relinked": report.records_relinked,
        "blobs_removed": report.blobs_removed,
        "damaged": [{"namespace": ns, "key": k, "error": e} for ns, k, e in report.damaged],
        "namespaces": report.by_namespace,
    }
    if json_:
        print_json(data)
    else:
        verb = "would rewrite" if dry_run else "rewrote"
        out_console().print(
            f"{verb} {report.rewritten} records under key {report.key_id!r}; {report.already} were "
            f"already; {report.not_envelopes} index entries left as they are",
            markup=False,
        )
        out_console().print(
            f"{verb} {report.blobs_rewritten} checkpoint blobs ({report.blobs_already} were already) "
            f"and relinked {report.records_relinked} records to them; "
            f"{'would remove' if dry_run else 'removed'} {report.blobs_removed} plaintext blobs",
            markup=False,
        )
        for ns, k, e in report.damaged:
            err_console().print(f"damaged: {ns}/{k}: {e}", markup=False)
    if report.damaged:
        raise CorruptionError(
            f"{len(report.damaged)} records are damaged and were left as they are (listed above); "
            "every other record was handled"
        )


def _encrypt_keyring(ctx: typer.Context, key: str | None, old_keys: list[str]) -> Any:
    """The keyring ``store encrypt`` works with: ``--key`` (active) and ``--old-key`` files, or
    else the configured keyring file (ValidationError when there is none)."""
    from runtime_core import ValidationError
    from runtime_persistence import Keyring

    from keepup._cli.context import keyring_option_of
    from keepup.runtime import keyring_path, resolved_keyring

    if key is None:
        if old_keys:
            raise ValidationError("--old-key goes with --key; a keyring file holds its old keys itself")
        ring = resolved_keyring(keyring_option_of(ctx))
        if ring is None:
            raise ValidationError(
                f"no keyring: `keepup store key new ID` creates {keyring_path(keyring_option_of(ctx))}, "
                "or give --key ID=FILE"
            )
        return ring
    new_id_, new_key = _read_key(key, "--key")
    ring = Keyring()
    for spec in old_keys:
        ring.add(*_read_key(spec, "--old-key"), activate=False)
    ring.add(new_id_, new_key)
    return ring


# ``keepup store key`` --------------------------------------------------------------------------

key_app = typer.Typer(
    help="The keyring of an encrypted store: add a key (rotation), list key ids.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(key_app, name="key")


@key_app.command("new")
def key_new(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The new key's id (letters, digits, . _ -).")],
    activate: Annotated[
        bool,
        typer.Option("--activate/--no-activate", help="Encrypt new records with it (default: yes)."),
    ] = True,
    json_: JsonOption = False,
) -> None:
    """Add a fresh random key to the keyring file (created 0600 if missing).

    The key is never printed. To rotate: add a new key, then run `keepup store encrypt`, which
    re-encrypts every record under it; keep the old key in the file until that is done."""
    from runtime_persistence.encryption import add_keyring_key

    from keepup._cli.context import keyring_option_of
    from keepup.runtime import keyring_path

    path = keyring_path(keyring_option_of(ctx))
    ring = add_keyring_key(path, key_id, activate=activate)
    data = {"keyring": str(path), "key_id": key_id, "active": ring.active_id, "key_ids": list(ring.key_ids)}
    if json_:
        print_json(data)
        return
    out_console().print(
        f"added key {key_id!r} to {path}; the active key is {ring.active_id!r}. Back this file up: "
        "without it an encrypted store cannot be read.",
        markup=False,
    )


@key_app.command("list")
def key_list(ctx: typer.Context, json_: JsonOption = False) -> None:
    """The key ids of the keyring file and which one is active (never the keys)."""
    from runtime_core import NotFoundError as Missing

    from keepup._cli.context import keyring_option_of
    from keepup.runtime import keyring_path, resolved_keyring

    path = keyring_path(keyring_option_of(ctx))
    ring = resolved_keyring(keyring_option_of(ctx))
    if ring is None:
        raise Missing(f"no keyring at {path} (`keepup store key new ID` creates one)")
    data = {"keyring": str(path), "active": ring.active_id, "key_ids": list(ring.key_ids)}
    if json_:
        print_json(data)
        return
    for kid in ring.key_ids:
        out_console().print(f"{kid}{'  (active)' if kid == ring.active_id else ''}", markup=False)


def _redact(url: str) -> str:
    from runtime_persistence.storage.stores import redact_url

    return redact_url(url)


_FORMATS = ("auto", "sqlite", "portable")


def _store_url(ctx: typer.Context) -> str:
    return resolved_store_url(store_option_of(ctx))


def _backup_folder(url: str) -> Path:
    """Where a store's backups go by default: ``backups/`` beside a SQLite file, else
    ``<keepup home>/backups``."""
    from runtime_persistence.storage.backup import BACKUP_DIR, sqlite_path_of

    from keepup.runtime import keepup_home

    path = sqlite_path_of(url)
    return path.parent / BACKUP_DIR if path is not None else keepup_home() / BACKUP_DIR


def _verify_json(report: Any) -> dict[str, Any]:
    return {
        "path": report.path,
        "ok": report.ok,
        "records": report.records,
        "envelopes": report.envelopes,
        "blobs": report.blobs,
        "problems": dict(report.problems),
    }


@app.command("backup")
def backup(
    ctx: typer.Context,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="PATH",
            help="A file or folder for the backup (default: backups/ beside a SQLite store, "
            "else backups/ in the Keepup home).",
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, metavar="N", help="Then keep only the newest N backups there."),
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="sqlite: a copy of the SQLite file (SQLite stores only); portable: a .kbak file any "
            "store can be restored from; auto (default): sqlite for SQLite stores, else portable.",
        ),
    ] = "auto",
    json_: JsonOption = False,
) -> None:
    """Back up the store while it is in use, verify the backup, and with --keep remove older ones.
    SQLite: the online backup API; PostgreSQL and MySQL: one read-only snapshot; every store:
    a checksummed portable file of every namespace, entry and blob."""
    from runtime_core import ValidationError
    from runtime_persistence.storage.backup import backup_sqlite, backup_store, sqlite_path_of

    if format_ not in _FORMATS:
        raise ValidationError(f"--format is one of {', '.join(_FORMATS)}, got {format_!r:.40}")
    url = _store_url(ctx)
    path = sqlite_path_of(url)
    if path is not None and not path.is_file():
        raise NotFoundError(f"no store at {path}")
    if format_ == "sqlite" and path is None:
        raise ValidationError(
            f"--format sqlite copies a SQLite file; {shown_url(url).split('://', 1)[0]} stores are backed up "
            "with --format portable"
        )
    if path is not None and format_ != "portable":
        info = backup_sqlite(path, to, keep=keep)
        kind = "sqlite"
    else:
        driver = open_store(read_only_url(url) or url)
        try:
            info = backup_store(driver, _backup_folder(url), to, keep=keep)
        finally:
            driver.close()
        kind = "portable"
    assert info.verified is not None
    if json_:
        print_json(
            {
                "path": info.path,
                "format": kind,
                "size": info.size,
                "created_at": info.created_at.isoformat(),
                "verify": _verify_json(info.verified),
                "removed": list(info.removed),
            }
        )
        return
    out_console().print(
        f"backed up {shown_url(url)} to {info.path} ({kind}, {_size(info.size)}; verified: "
        f"{info.verified.records} records, {info.verified.blobs} blobs)",
        markup=False,
    )
    for old in info.removed:
        out_console().print(f"removed the older backup {old}", markup=False)


@app.command("verify")
def verify(
    ctx: typer.Context,
    path: Annotated[
        str | None, typer.Argument(metavar="[FILE]", help="A backup file to verify (default: the store).")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Read every record and blob of the store (or of a backup FILE, SQLite or portable) and check
    every checksum; exit 6 when anything is damaged."""
    from runtime_core import CorruptionError
    from runtime_persistence.storage.backup import (
        is_portable_backup,
        sqlite_path_of,
        verify_backup,
        verify_sqlite,
        verify_store,
    )

    if path is not None:
        target = Path(path)
        if not target.is_file():
            raise NotFoundError(f"no backup at {target}")
        report = verify_backup(target) if is_portable_backup(target) else verify_sqlite(target)
    else:
        url = _store_url(ctx)
        store = sqlite_path_of(url)
        if store is not None:
            report = verify_sqlite(store)
        else:
            driver = open_store(url)
            try:
                report = verify_store(driver)
            finally:
                driver.close()
    if json_:
        print_json(_verify_json(report))
    else:
        console = out_console()
        console.print(
            f"{report.path}: {report.records} records ({report.envelopes} envelopes), {report.blobs} blobs read",
            markup=False,
        )
        for where, what in report.problems.items():
            console.print(f"  damaged: {where}: {what}", markup=False)
    if not report.ok:
        raise CorruptionError(f"{report.path} has {len(report.problems)} damaged part(s)")


@app.command("restore-backup")
def restore_backup(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(
            metavar="[FILE]",
            help="The backup to restore (default: the newest backup of this store that verifies).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Restore a portable backup into a store that holds data (over its keys)."
        ),
    ] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Restore a backup, verified first. A SQLite copy replaces the SQLite store (the current one
    is moved aside, never deleted); a portable backup is restored into the store, which must be
    empty unless --force. Without FILE: the newest backup of this store, falling back to the
    previous good one when it fails verification (each one skipped is named). Writes made after
    the backup was taken are not in it."""
    from runtime_persistence.storage.backup import (
        RestoreReport,
        is_portable_backup,
        list_backups,
        list_store_backups,
        restore_newest,
        restore_sqlite_backup,
        restore_store,
        sqlite_path_of,
    )

    url = _store_url(ctx)
    store = sqlite_path_of(url)
    replaced: list[Path | None] = [None]

    def restore(source: Path) -> RestoreReport:
        if not source.is_file():
            raise NotFoundError(f"no backup at {source}")
        if is_portable_backup(source):
            driver = open_store(url)
            try:
                return restore_store(source, driver, force=force)
            finally:
                driver.close()
        if store is None:
            from runtime_core import ValidationError

            raise ValidationError(
                f"{source} is not a portable backup (.kbak); only a SQLite store can be replaced by a SQLite copy"
            )
        restored, replaced[0] = restore_sqlite_backup(source, store)
        return RestoreReport(str(source), str(restored), 0, 0, 0)

    if path is not None:
        candidates = [Path(path)]
        what = f"the backup {path}"
    else:
        found = list_store_backups(url, _backup_folder(url))
        if store is not None:
            found += list_backups(store)
        found.sort(key=lambda b: b.path.rsplit("-", 1)[-1], reverse=True)  # by their UTC stamps
        candidates = [Path(b.path) for b in found]
        what = "the newest backup that verifies" + (f" ({candidates[0]} first)" if candidates else "")
    confirm(f"Restore {what} into {shown_url(url)}?", yes=yes)
    report = restore(candidates[0]) if path is not None else restore_newest(candidates, restore)
    data = {
        "store": report.store if store is None else str(store),
        "backup": report.backup,
        "replaced": None if replaced[0] is None else str(replaced[0]),
        "restored": None
        if replaced[0] is not None or not is_portable_backup(report.backup)
        else {
            "namespaces": report.namespaces,
            "entries": report.entries,
            "blobs": report.blobs,
            "resumed": report.resumed,
        },
        "skipped": dict(report.skipped),
    }
    if json_:
        print_json(data)
    else:
        console = out_console()
        for skipped, why in report.skipped.items():
            err_console().print(f"skipped the backup {skipped}: {why}", markup=False)
        console.print(
            f"restored {data['store']} from {report.backup}"
            + ("" if replaced[0] is None else f"; the old store is at {replaced[0]}")
            + (
                ""
                if data["restored"] is None
                else f" ({report.entries} records, {report.blobs} blobs"
                + ("; an interrupted restore finished" if report.resumed else "")
                + ")"
            ),
            markup=False,
        )
