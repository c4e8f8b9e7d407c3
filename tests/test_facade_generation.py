"""The committed facade modules are exactly what scripts/gen_facade.py generates from the
packages' current ``__all__``, and the generator refuses name collisions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import gen_facade  # noqa: E402
from scripts.workspace import load_packages  # noqa: E402


def test_the_committed_facade_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_facade.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_two_packages_exporting_different_objects_under_one_name_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runtime_telemetry

    # runtime_telemetry suddenly exports its own `Checkpoint`: a collision with runtime_core's.
    monkeypatch.setattr(runtime_telemetry, "Checkpoint", type("Checkpoint", (), {}), raising=False)
    monkeypatch.setattr(runtime_telemetry, "__all__", [*runtime_telemetry.__all__, "Checkpoint"])
    with pytest.raises(gen_facade.FacadeError, match="name collision: 'Checkpoint'"):
        gen_facade.generate()


def test_a_reexport_of_the_same_object_is_not_a_collision() -> None:
    import runtime_core
    import runtime_telemetry

    assert runtime_telemetry.NullTelemetry is runtime_core.NullTelemetry
    text = gen_facade.generate()[load_packages()["keepup-runtime"].src / "__init__.py"]
    assert text.count("    NullTelemetry,\n") == 1


def test_a_new_public_name_makes_the_check_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime_tools

    monkeypatch.setattr(runtime_tools, "brand_new_tool", lambda: None, raising=False)
    monkeypatch.setattr(runtime_tools, "__all__", [*runtime_tools.__all__, "brand_new_tool"])
    monkeypatch.setattr(sys, "argv", ["gen_facade.py", "--check"])
    assert gen_facade.main(["--check"]) == 1


def test_framework_adapters_are_not_reexported_by_the_facade() -> None:
    # keepup-langgraph depends on persistence; the facade does not depend on it, so the
    # generated facade must not import it (no library package imports an adapter)
    text = gen_facade.generate()[load_packages()["keepup-runtime"].src / "__init__.py"]
    assert "keepup_langgraph" not in text and "KeepupSaver" not in text


def test_a_package_init_is_made_lazy_from_its_imports(tmp_path: Path) -> None:
    init = tmp_path / "pkg" / "__init__.py"
    init.parent.mkdir()
    (init.parent / "sub.py").write_text("")
    init.write_text(
        '"""A package."""\n\nfrom os.path import join\nfrom json import dumps\n\n__all__ = ["dumps", "join"]\n'
    )
    text = gen_facade._lazy_init("pkg", init)
    assert "if TYPE_CHECKING:\n    from os.path import (\n        join,\n    )" in text
    assert '"dumps": "json",' in text and '_SUBMODULES = frozenset({"sub"})' in text
    init.write_text(text)  # the lazy form reads back to itself: the generator is idempotent
    assert gen_facade._lazy_init("pkg", init) == text
    namespace: dict[str, object] = {"__name__": "pkg"}
    exec(compile(text, str(init), "exec"), namespace)
    assert "join" not in namespace and namespace["__getattr__"]("join") is __import__("os").path.join  # type: ignore[operator]


@pytest.mark.parametrize(
    "body",
    [
        "from json import dumps\nCACHE = {}\n",  # code beside the re-exports would be lost
        "from json import dumps as encode\n",  # a renamed re-export
        "from . import sub\n",  # a relative import
        "from json import dumps\n__all__ = ['dumps', 'loads']\n",  # __all__ names what no import gives
        "from json import dumps\nfrom pickle import dumps\n",  # one name, two sources
    ],
)
def test_a_lazy_init_refuses_what_it_cannot_keep(tmp_path: Path, body: str) -> None:
    init = tmp_path / "pkg" / "__init__.py"
    init.parent.mkdir()
    init.write_text('"""A package."""\n\n' + body)
    with pytest.raises(gen_facade.FacadeError):
        gen_facade._lazy_init("pkg", init)
