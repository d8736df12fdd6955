"""`python -m tests.bench`."""

import os

# The benchmark forks children while gRPC threads run; without fork handlers
# gRPC stays quiet about it (children get the environment without this).
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"

from tests.bench.runner import main

raise SystemExit(main())
