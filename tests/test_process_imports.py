"""A fresh interpreter that imports the dispatcher's entry point, or the shared
runtime alone, loads nothing that only the service needs: no gRPC, SQLAlchemy,
asyncpg or Alembic (tests/import_check.py says which were loaded)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).resolve().parent / "import_check.py"


def _check(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # -I: isolated, so tests/ (the script's folder) cannot shadow the real packages.
        [sys.executable, "-I", str(CHECK), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_dispatcher_entry_point_loads_nothing_of_the_service() -> None:
    run = _check("dispatcher.main")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "imported 1 modules: dispatcher.main" in run.stdout


def test_the_runtime_alone_loads_nothing_of_the_service() -> None:
    run = _check("--package", "marketing_runtime", "--package", "marketing.bus")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "marketing_runtime.connection" in run.stdout  # every module was imported
    assert "marketing.bus.v1.bus_pb2" in run.stdout


def test_the_check_names_what_the_service_entry_point_loads() -> None:
    run = _check("service.main")
    assert run.returncode == 1, run.stdout + run.stderr
    loaded = run.stdout.rsplit(": ", 1)[-1].split(", ")
    assert {"alembic", "grpc", "sqlalchemy"} <= {name.strip() for name in loaded}
