"""The import contracts that `make lint` checks (pyproject.toml, [tool.importlinter])
hold on this tree, and one forbidden import breaks them: lint-imports, run on a
copy of the tree with that import added, fails and names the broken contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Where each root package of the contracts lives, relative to the repository.
PACKAGES = ("service", "dispatcher", "clients/runtime/marketing_runtime")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy's packages come first on the path, before the editable installs
    # of the real tree (lint-imports also puts its working directory first).
    path = os.pathsep.join([str(tree), str(tree / "clients" / "runtime")])
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_contracts_hold_on_this_tree() -> None:
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout
    assert "BROKEN" not in run.stdout


# (new module, relative to the repository; the line it holds; the contract it breaks)
VIOLATIONS = [
    ("dispatcher/intruder.py", "import service", "The dispatcher does not import the service"),
    ("service/intruder.py", "import dispatcher", "The service does not import the dispatcher"),
    (
        "clients/runtime/marketing_runtime/intruder.py",
        "import dispatcher",
        "The shared runtime imports neither process",
    ),
    # A feature folder that does not exist yet is held to the gRPC contracts too.
    (
        "service/segments/rules.py",
        "import grpc",
        "Only the gRPC boundary (service.api) imports gRPC",
    ),
    # Generated gRPC stubs load grpc as surely as `import grpc` does.
    (
        "service/segments/rules.py",
        "from marketing.v1 import service_pb2_grpc",
        "Only the gRPC boundary (service.api) imports gRPC",
    ),
    (
        "service/segments/rules.py",
        "from service.api import errors",
        "Only the entry point imports the gRPC boundary",
    ),
    ("service/storage/intruder.py", "import service.main", "nothing imports the entry point"),
    (
        "service/segments/handlers.py",
        "from service.storage.models import Contact",
        "never import the table definitions",
    ),
    (
        "dispatcher/providers/klaviyo/intruder.py",
        "import nats",
        "Provider clients import neither the bus nor the database",
    ),
    (
        "dispatcher/providers/intruder.py",
        "from marketing_runtime import connection",
        "Provider clients import neither the bus nor the database",
    ),
]


@pytest.mark.parametrize(("module", "line", "contract"), VIOLATIONS)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy_tree(tmp_path / "tree")
    path = tree / module
    if not path.parent.exists():
        path.parent.mkdir()
        (path.parent / "__init__.py").write_text('"""A feature folder added later."""\n')
    path.write_text(f'"""Breaks a contract."""\n\n{line}  # noqa: F401\n')

    run = _lint_imports(tree)

    assert run.returncode != 0, run.stdout
    broken = [text for text in run.stdout.splitlines() if text.endswith(" BROKEN")]
    assert len(broken) == 1, run.stdout
    assert contract in broken[0], run.stdout
    assert module.rsplit("/", 1)[-1].removesuffix(".py") in run.stdout
