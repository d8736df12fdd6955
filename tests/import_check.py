"""Import modules in this interpreter and report which of the service's own
dependencies (gRPC, SQLAlchemy, asyncpg, Alembic) they loaded.

A script, importing nothing of the project before its arguments, so that it can
run in a fresh interpreter of any environment (the test venv, or a throw-away
dispatcher-only install: `make check-dispatcher-install`):

    python tests/import_check.py dispatcher.main
    python tests/import_check.py --package marketing_runtime --package marketing.bus

`--package` imports every module below the package. Prints what was checked;
exits 1 naming the offending packages if any was loaded.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

# What only the service needs; a module whose name starts with one of these
# (grpc_health, sqlalchemy.ext.asyncio, ...) counts too.
SERVICE_ONLY = ("sqlalchemy", "asyncpg", "alembic", "grpc")


def _import_package(name: str) -> list[str]:
    package = importlib.import_module(name)
    names = [name]
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
        importlib.import_module(module.name)
        names.append(module.name)
    return names


def service_only_packages_loaded() -> list[str]:
    """The top-level packages of the service-only modules loaded so far."""
    loaded = (name for name in sys.modules if name.startswith(SERVICE_ONLY))
    return sorted({name.partition(".")[0] for name in loaded})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to import")
    parser.add_argument("--package", action="append", default=[], help="import all of it")
    args = parser.parse_args()
    imported = [importlib.import_module(name).__name__ for name in args.modules]
    for package in args.package:
        imported += _import_package(package)
    loaded = service_only_packages_loaded()
    print(f"imported {len(imported)} modules: {', '.join(imported)}")
    if loaded:
        print(f"they loaded what only the service needs: {', '.join(loaded)}")
        return 1
    print(f"none of {', '.join(SERVICE_ONLY)} loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
