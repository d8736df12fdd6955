"""A bearer token sent without TLS can be read by anyone on the path: the
client says so (a warning, not an error) unless the service is on this host."""

from __future__ import annotations

import ipaddress
import warnings

# gRPC target schemes that never leave the host.
_LOCAL_SCHEMES = ("unix:", "unix-abstract:", "vsock:")
# Name-resolver prefixes in front of host:port (https://grpc.github.io/grpc/core/md_doc_naming.html).
_RESOLVER_PREFIXES = ("dns:///", "dns:", "ipv4:", "ipv6:")


class PlaintextTokenWarning(UserWarning):
    """The token goes unencrypted over the network: use `tls=` (or filter this
    warning where the network itself is trusted)."""


def host_of(target: str) -> str:
    """The host of a gRPC target such as "host:50051", "[::1]:50051" or
    "dns:///host:50051" ("" when the target names a local socket)."""
    if target.startswith(_LOCAL_SCHEMES):
        return ""
    for prefix in _RESOLVER_PREFIXES:
        if target.startswith(prefix):
            target = target[len(prefix) :].split(",")[0]  # ipv4:/ipv6: may list several
            break
    if target.startswith("["):
        return target[1:].partition("]")[0]
    if target.count(":") == 1:
        return target.partition(":")[0]
    return target  # no port, or a bare IPv6 address


def is_loopback(host: str) -> bool:
    if host == "" or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that DNS resolves: it may lead anywhere


def warn_if_token_in_clear(target: str) -> None:
    """Called only when a token goes over a plaintext channel. Python's default
    warning filter shows each such warning once (per target and calling line)."""
    if is_loopback(host_of(target)):
        return
    warnings.warn(
        f"the bearer token goes to {target} without TLS, readable on the network: "
        "pass tls=Tls(...) (or credentials=)",
        PlaintextTokenWarning,
        stacklevel=3,  # the line that created the client
    )
