"""Generate the Python protobuf and gRPC code for `proto/` into two package trees.

The public contract (`marketing.v1`) goes to `<clients>/python/marketing/` (the
`marketing-api` distribution); the bus messages between the service and the
dispatcher (`marketing.bus.v1`) go to `<clients>/runtime/marketing/` (the
`marketing-runtime` distribution, which needs no gRPC). `marketing` is a
namespace package that both distributions share.

Run through `make generate` (writes into `clients/`) or `make lint` (writes to a
scratch folder and compares, so stale generated code fails lint).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
PACKAGE = "marketing"
# Where each proto package's code goes, relative to the clients folder.
DISTRIBUTIONS = {"marketing/bus": "runtime", "marketing/v1": "python"}


def generate(clients_root: Path) -> None:
    """Replace `<clients_root>/{python,runtime}/marketing` with freshly generated code."""
    with tempfile.TemporaryDirectory() as scratch:
        out_root = Path(scratch)
        _protoc(out_root)
        for distribution in set(DISTRIBUTIONS.values()):
            shutil.rmtree(clients_root / distribution / PACKAGE, ignore_errors=True)
        for package, distribution in DISTRIBUTIONS.items():
            # The bus has no services: its empty *_pb2_grpc modules would only
            # import grpc, which the runtime does not depend on.
            skip = shutil.ignore_patterns("*_pb2_grpc.py") if distribution == "runtime" else None
            shutil.copytree(out_root / package, clients_root / distribution / package, ignore=skip)
        left = {str(p.relative_to(out_root)) for p in (out_root / PACKAGE).iterdir() if p.is_dir()}
        unplaced = left - set(DISTRIBUTIONS)
        if unplaced:
            sys.exit(f"no distribution for proto packages {sorted(unplaced)}: add to DISTRIBUTIONS")


def _protoc(out_root: Path) -> None:
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
    # Packages need __init__.py so that mypy and setuptools see them; all but
    # `marketing` itself, the namespace both distributions share (PEP 420).
    for folder in {(out_root / p).parent for p in protos}:
        while folder != out_root / PACKAGE:
            (folder / "__init__.py").touch()
            folder = folder.parent
    for package in DISTRIBUTIONS:  # the .pyi stubs are the types (PEP 561)
        (out_root / package / "py.typed").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clients_root", type=Path, help="folder that receives python/, runtime/")
    generate(parser.parse_args().clients_root)


if __name__ == "__main__":
    main()
