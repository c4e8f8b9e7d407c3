"""The package surface: errors, protocols, the null telemetry, stdlib-only imports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import runtime_core
from runtime_core import (
    ArtifactStore,
    BudgetExceededError,
    CheckpointStore,
    ConflictError,
    CorruptionError,
    DriverUnavailableError,
    EventLog,
    KeepupError,
    LeaseStore,
    NotFoundError,
    NullTelemetry,
    RecoveryRefusedError,
    RunStore,
    RuntimeBusyError,
    Serializer,
    SessionStore,
    StorageError,
    TaskRepository,
    Telemetry,
    ToolInvoker,
    UnsafeWorkspaceError,
    ValidationError,
    WorkspaceSnapshots,
)


def test_all_is_unique_and_every_name_resolves() -> None:
    assert len(set(runtime_core.__all__)) == len(runtime_core.__all__)
    for name in runtime_core.__all__:
        assert getattr(runtime_core, name) is not None


@pytest.mark.parametrize(
    "error",
    [
        ValidationError,
        NotFoundError,
        ConflictError,
        CorruptionError,
        RuntimeBusyError,
        DriverUnavailableError,
        StorageError,
        RecoveryRefusedError,
        UnsafeWorkspaceError,
        BudgetExceededError,
    ],
)
def test_every_error_is_a_keepup_error(error: type[Exception]) -> None:
    assert issubclass(error, KeepupError)


def test_errors_also_fit_the_builtin_families_callers_catch() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(BudgetExceededError, TimeoutError)


def test_errors_carry_their_details() -> None:
    busy = RuntimeBusyError("thread is busy", thread_id="t", holder="run-1")
    assert (str(busy), busy.thread_id, busy.holder) == ("thread is busy", "t", "run-1")
    missing = DriverUnavailableError("install it", extra="runtime-persistence[postgres]")
    assert missing.extra == "runtime-persistence[postgres]"


def test_null_telemetry_satisfies_the_protocol_and_records_nothing() -> None:
    tel = NullTelemetry()
    assert isinstance(tel, Telemetry)
    tel.event("e", a=1)
    tel.count("c")
    tel.observe("h", 0.1)
    with tel.span("s", x=1) as fields:
        fields["y"] = 2
    with pytest.raises(KeyError), tel.span("s"):
        raise KeyError("propagates")


@pytest.mark.parametrize(
    "protocol",
    [
        CheckpointStore,
        ArtifactStore,
        WorkspaceSnapshots,
        SessionStore,
        RunStore,
        LeaseStore,
        TaskRepository,
        EventLog,
        Serializer,
        Telemetry,
        ToolInvoker,
    ],
)
def test_protocols_are_runtime_checkable(protocol: Any) -> None:
    assert not isinstance(object(), protocol)


def test_importing_runtime_core_loads_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import runtime_core; "
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    third_party = sorted(loaded - set(sys.stdlib_module_names) - {"runtime_core"})
    assert third_party == []
