"""The TypeScript client's integration test (clients/typescript/test), run by
Node.js against the real service this harness starts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.harness import ServiceHarness

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def test_typescript_client_against_the_live_service(harness: ServiceHarness) -> None:
    npm = shutil.which("npm")
    assert npm, "Node.js and npm are needed for the TypeScript client"
    assert (PACKAGE / "node_modules").is_dir(), "run `make test`: it installs clients/typescript"
    run = subprocess.run(
        [npm, "test", "--silent"],
        cwd=PACKAGE,
        env={**os.environ, "MARKETING_URL": f"http://{harness.address}"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, f"npm test failed:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    assert "# fail 0" in run.stdout, run.stdout[-3000:]
