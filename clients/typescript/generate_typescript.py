"""Generate the TypeScript code for `proto/` into `<out>/` (normally `src/gen`).

`buf generate` runs protoc-gen-es from node_modules over two inputs: our
`marketing.v1` contract, and google.rpc's `status.proto` and
`error_details.proto` (so callers can read the BadRequest field violations),
taken from the googleapis-common-protos package the service already uses.
Run through `make generate`; `make lint` generates into a scratch folder and
compares, so stale generated code fails lint.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import google.rpc

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parents[1] / "proto"
BUF = Path(sys.executable).parent / "buf"
GOOGLE_RPC_FILES = ("google/rpc/status.proto", "google/rpc/error_details.proto")


def generate(out: Path) -> None:
    """Replace `out` with code generated for marketing.v1 and google.rpc."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch:
        googleapis = Path(scratch)
        for name in GOOGLE_RPC_FILES:
            source = Path(next(iter(google.rpc.__path__))) / Path(name).name
            (googleapis / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, googleapis / name)
        _buf_generate(PROTO_ROOT, ["marketing/v1"], out)
        _buf_generate(googleapis, list(GOOGLE_RPC_FILES), out)


def _buf_generate(root: Path, paths: list[str], out: Path) -> None:
    command = [str(BUF), "generate", str(root), "--template", "buf.gen.yaml", "-o", str(out)]
    for path in paths:
        command += ["--path", str(root / path)]
    subprocess.run(command, cwd=HERE, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder that receives the generated code")
    generate(parser.parse_args().out.resolve())


if __name__ == "__main__":
    main()
