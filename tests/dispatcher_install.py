"""`make check-dispatcher-install`: install the dispatcher alone, as the
README's dispatcher image does ("Installing one process": the install line of a
dispatcher-only host, run on a copy of only pyproject.toml, clients/runtime and
dispatcher/), into a throw-away venv, and check that it carries none of the
service's dependencies and runs without service/ anywhere.

    python -m tests.dispatcher_install

Too slow for `make test` (a minute or more: two packages are built), so CI runs
it as a step of its own. Exits non-zero, saying why, when a check fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tests.harness import assert_eventually
from tests.processes import NatsServer, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ["./clients/runtime", ".[dispatcher]"]  # the README's install line
# What the README's Dockerfile copies into the image.
SOURCES = ("pyproject.toml", "clients/runtime", "dispatcher")
# Distributions only the service needs (prefixes: grpcio-status and the like count).
SERVICE_ONLY = ("grpc", "sqlalchemy", "asyncpg", "alembic", "marketing-api")


class CheckFailed(Exception):
    pass


def _run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise CheckFailed(f"{' '.join(command)} failed:\n{run.stdout}{run.stderr}")
    return run


def copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    dest.mkdir()
    for source in SOURCES:
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, dest / source, ignore=ignore)
        else:
            shutil.copy(ROOT / source, dest / source)
    return dest


def install(venv: Path, sources: Path) -> None:
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *INSTALL], cwd=sources)


def check_distributions(venv: Path) -> None:
    listing = _run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"])
    names = sorted(package["name"].lower() for package in json.loads(listing.stdout))
    unwanted = [name for name in names if name.startswith(SERVICE_ONLY)]
    if unwanted:
        raise CheckFailed(f"a dispatcher-only install brought {', '.join(unwanted)}")
    print(f"installed: {', '.join(names)}")


def check_imports(venv: Path, scratch: Path) -> None:
    # -I: neither this checkout nor PYTHONPATH on the path, only what was installed.
    python = [str(venv / "bin" / "python"), "-I"]
    where = _run([*python, "-c", "import dispatcher; print(dispatcher.__file__)"], cwd=scratch)
    if not where.stdout.startswith(str(venv)):
        raise CheckFailed(f"dispatcher was not imported from the install: {where.stdout}")
    check = [str(ROOT / "tests" / "import_check.py"), "dispatcher.main"]
    check += ["--package", "marketing_runtime", "--package", "marketing.bus"]
    print(_run([*python, *check], cwd=scratch).stdout, end="")
    found = "import importlib.util; print(importlib.util.find_spec('service') is None)"
    if _run([*python, "-c", found], cwd=scratch).stdout.strip() != "True":
        raise CheckFailed("the service's code was installed too")


def check_it_runs(venv: Path, scratch: Path) -> None:
    """The installed entry point connects to a real nats-server, serves its
    /metrics and stops cleanly on SIGTERM."""
    nats = NatsServer(scratch / "nats")
    nats.start()
    metrics_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env |= {
        "MARKETING_NATS_URL": nats.url,
        "MARKETING_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
    }
    log = scratch / "dispatcher.log"
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(venv / "bin" / "marketing-dispatcher")],
                cwd=scratch,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(metrics_port, timeout_s=60)
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as reply:
                page = reply.read().decode()
            if "marketing_dispatcher_deliveries" not in page:
                raise CheckFailed(f"no dispatcher series on its /metrics:\n{page}")
            # Working (so its SIGTERM handler is in place): it says so once connected.
            assert_eventually(lambda: "delivering to" in log.read_text(), timeout_s=60)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
        if code != 0:
            raise CheckFailed(f"marketing-dispatcher ended with {code}:\n{log.read_text()}")
    finally:
        nats.stop()
    print("marketing-dispatcher ran, served /metrics and stopped on SIGTERM")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dispatcher-install-") as tmp:
        scratch = Path(tmp)
        venv = scratch / "venv"
        try:
            install(venv, copy_sources(scratch / "src"))
            check_distributions(venv)
            check_imports(venv, scratch)
            check_it_runs(venv, scratch)
        except CheckFailed as failure:
            print(f"check-dispatcher-install: {failure}", file=sys.stderr)
            return 1
    print("check-dispatcher-install: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
