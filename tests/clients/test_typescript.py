"""The TypeScript client's integration test (clients/typescript/test), run by
Node.js against the real service this harness starts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.harness import ServiceHarness, make_certificates, write_auth_file

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def test_typescript_client_against_the_live_service(
    harness: ServiceHarness, database_url: str, tmp_path: Path
) -> None:
    npm = shutil.which("npm")
    assert npm, "Node.js and npm are needed for the TypeScript client"
    assert (PACKAGE / "node_modules").is_dir(), "run `make test`: it installs clients/typescript"
    files = make_certificates(tmp_path)
    with ServiceHarness.start(
        database_url,
        auth_file=write_auth_file(tmp_path / "callers.toml", [("ts", harness.token, ["*"])]),
        tls_cert=files["server_cert"],
        tls_key=files["server_key"],
        tls_client_ca=files["ca"],
    ) as tls_service:
        run = subprocess.run(
            [npm, "test", "--silent"],
            cwd=PACKAGE,
            env={
                **os.environ,
                "MARKETING_URL": f"http://{harness.address}",
                "MARKETING_TOKEN": harness.token,
                "MARKETING_TLS_URL": f"https://{tls_service.address}",
                "MARKETING_TLS_CA": str(files["ca"]),
                "MARKETING_TLS_CLIENT_CERT": str(files["client_cert"]),
                "MARKETING_TLS_CLIENT_KEY": str(files["client_key"]),
            },
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert run.returncode == 0, f"npm test failed:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    assert "# fail 0" in run.stdout, run.stdout[-3000:]
    assert "# skipped 0" in run.stdout, "the mutual TLS tests did not run"
