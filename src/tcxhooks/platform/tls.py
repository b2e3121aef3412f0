"""TLS on the gRPC links between the services (and of the CLI), from `[services]` (docs/deployment.md):

    plaintext   no tls_* key                   (loopback, or a network you trust, with the token)
    TLS         tls_cert + tls_key on servers;  clients verify them with tls_ca (else the system's CAs)
    mutual TLS  the above + tls_client_auth:    servers also require a client certificate signed by
                                                tls_ca, and clients present tls_cert + tls_key

Health probes cannot speak TLS (kubelet gRPC probes, Docker's HEALTHCHECK): `[services] health_port`
answers grpc.health.v1 alone in plaintext for them.
"""

from __future__ import annotations

import grpc

from .settings import ServicesConfig


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def server_credentials(services: ServicesConfig) -> grpc.ServerCredentials | None:
    """The servers' credentials; None for plaintext."""
    if not services.tls_cert:
        return None
    pair = [(_read(services.tls_key), _read(services.tls_cert))]
    if services.tls_client_auth:
        return grpc.ssl_server_credentials(pair, root_certificates=_read(services.tls_ca), require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


def channel_credentials(services: ServicesConfig) -> grpc.ChannelCredentials | None:
    """The clients' credentials; None for plaintext."""
    if not (services.tls_cert or services.tls_ca):
        return None
    ca = _read(services.tls_ca) if services.tls_ca else None
    if services.tls_client_auth:
        return grpc.ssl_channel_credentials(ca, _read(services.tls_key), _read(services.tls_cert))
    return grpc.ssl_channel_credentials(ca)
