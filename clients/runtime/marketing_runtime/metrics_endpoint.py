"""The Prometheus /metrics endpoint of a process (service or dispatcher).

Each process serves the default registry, which holds only the series of the
modules it imported: the service's from `service/metrics.py`, the dispatcher's
from `dispatcher/metrics.py`. The runtime itself defines none.
"""

from __future__ import annotations

from prometheus_client import start_http_server


def serve_metrics(address: str) -> None:
    """Serve /metrics from a background thread; "" turns it off."""
    if not address:
        return
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")
