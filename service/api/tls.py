"""TLS, and optionally mutual TLS, on the gRPC port (MARKETING_TLS_*)."""

from __future__ import annotations

from pathlib import Path

import grpc

from service.settings import ServiceSettings


class TlsSetupError(Exception):
    """A TLS file cannot be read; the message names it."""


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """Credentials for the gRPC port, or None to serve plaintext. With a client
    CA, a client must present a certificate that CA signed (mutual TLS)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    client_ca = None if settings.tls_client_ca is None else _read(settings.tls_client_ca)
    return grpc.ssl_server_credentials(
        [(_read(settings.tls_key), _read(settings.tls_cert))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _read(path: Path) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise TlsSetupError(f"TLS file {path}: {exc.strerror or exc}") from None
    # gRPC reports a file that is not PEM only as "failed to bind to address".
    if b"-----BEGIN " not in content:
        raise TlsSetupError(f"TLS file {path}: not PEM (no -----BEGIN line)")
    return content
