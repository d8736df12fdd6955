"""Generate the Python protobuf and gRPC code for `proto/` into a package tree.

Run through `make generate` (writes `clients/python/marketing/`) or `make lint`
(writes to a scratch folder and compares, so stale generated code fails lint).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
PACKAGE = "marketing"


def generate(out_root: Path) -> None:
    """Replace `out_root/marketing` with code generated from every proto file."""
    shutil.rmtree(out_root / PACKAGE, ignore_errors=True)
    out_root.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    # Packages need __init__.py so that mypy and setuptools see them.
    for folder in {(out_root / p).parent for p in protos}:
        while folder != out_root:
            (folder / "__init__.py").touch()
            folder = folder.parent
    (out_root / PACKAGE / "py.typed").touch()  # the .pyi stubs are the types


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_root", type=Path, help="folder that receives the package")
    generate(parser.parse_args().out_root)


if __name__ == "__main__":
    main()
