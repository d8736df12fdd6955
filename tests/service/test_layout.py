"""What the layout promises, read from the source: the API layer converts
domain views, never ORM rows, and feature code does not speak gRPC (it uses
the generated messages only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import service

SERVICE = Path(service.__file__).parent
HANDLERS = sorted(SERVICE.glob("*/handlers.py"))
API_LAYER = sorted(SERVICE.glob("api/*.py")) + HANDLERS
FEATURE_CODE = HANDLERS + sorted(SERVICE.glob("*/rules.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, and for `from a import b` also `a.b`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _id(path: Path) -> str:
    return str(path.relative_to(SERVICE))


def test_every_feature_has_its_handlers() -> None:
    assert {path.parent.name for path in HANDLERS} == {
        "contacts",
        "consent",
        "events",
        "deliveries",
    }


@pytest.mark.parametrize("path", API_LAYER, ids=_id)
def test_the_api_layer_never_imports_the_table_definitions(path: Path) -> None:
    models = "service.storage.models"
    assert not [name for name in imported(path) if name.startswith(models)]


@pytest.mark.parametrize("path", FEATURE_CODE, ids=_id)
def test_feature_code_never_imports_grpc(path: Path) -> None:
    speaks_grpc = [
        name
        for name in imported(path)
        if name.split(".")[0] in ("grpc", "grpc_status") or name.endswith("_pb2_grpc")
    ]
    assert not speaks_grpc
