"""gRPC plumbing: the server factory (auth, metrics and error interceptors; errors.py), client channels.

    server, port = create_server(settings.services, "127.0.0.1:50052")   # interceptors installed
    channel = open_channel(settings.services, "dispatcher")
    stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)

With `[services] token` set, every RPC except grpc.health.v1 needs `authorization: Bearer <token>`;
a wrong or missing token gets UNAUTHENTICATED. Channels made here send the token themselves.
"""
from __future__ import annotations

import hmac
import ipaddress
from typing import Any, Awaitable, Callable

import grpc

from .config import Config
from .settings import PlatformSettings, ServicesConfig
from .errors import ErrorInterceptor
from .metrics import GRPC_CLIENT_HANDLED, ServerMetricsInterceptor

HEALTH_PREFIX = "/grpc.health.v1.Health/"
MAX_MESSAGE = 64 * 1024 * 1024
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 30_000),
]
# Calls that arrive faster than a service's event loop takes them wait in gRPC's own queue. Past
# 1,000 waiting calls (grpc's default) gRPC refuses new ones at random, and the caller reads
# CANCELLED, as if it had given up itself. Our callers have deadlines and retry, and a burst of
# Publish calls is better queued than refused: refusals begin at 10,000 waiting, all at 30,000.
_SERVER_OPTIONS = [
    *_OPTIONS,
    ("grpc.server.max_pending_requests", 10_000),
    ("grpc.server.max_pending_requests_hard_limit", 30_000),
]


def _deny(message: str) -> grpc.RpcMethodHandler:
    async def abort(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(abort, request_deserializer=lambda raw: raw,
                                               response_serializer=lambda raw: raw)


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires the shared bearer token on every RPC but health checks."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        if details.method.startswith(HEALTH_PREFIX):
            return await continuation(details)
        given = ""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value if isinstance(value, str) else value.decode()
        if not given:
            return _deny("missing service token (authorization: Bearer …)")
        if not hmac.compare_digest(given.encode(), self._expected):
            return _deny("wrong service token")
        return await continuation(details)


def listen_address(address: str) -> str:
    """Where a server for `[services] <name>` = host:port binds: loopback stays loopback, else all."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        if ipaddress.ip_address(host).is_loopback:
            return address
    except ValueError:
        if host == "localhost":
            return f"127.0.0.1:{port}"
    return f"[::]:{port}"


def _server_credentials(s: ServicesConfig) -> grpc.ServerCredentials | None:
    if not (s.tls_cert and s.tls_key):
        return None
    with open(s.tls_key, "rb") as key, open(s.tls_cert, "rb") as cert:
        pair = [(key.read(), cert.read())]
    ca = open(s.tls_ca, "rb").read() if s.tls_ca else None
    return grpc.ssl_server_credentials(pair, root_certificates=ca, require_client_auth=ca is not None)


def create_server(services: ServicesConfig, address: str) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server bound to `address` with the shared interceptors; returns it and its port."""
    interceptors: list[grpc.aio.ServerInterceptor] = [ServerMetricsInterceptor(), ErrorInterceptor()]
    if services.token:
        interceptors.insert(0, TokenAuthInterceptor(services.token))
    server = grpc.aio.server(interceptors=interceptors, options=_SERVER_OPTIONS)
    credentials = _server_credentials(services)
    bind = listen_address(address)
    port = server.add_secure_port(bind, credentials) if credentials else server.add_insecure_port(bind)
    if port == 0:
        raise OSError(f"cannot listen on {bind}")
    return server, port


def describe_token(config: Config) -> str:
    """The service token a client made from `config` sends, by where it came from (never its value)."""
    if not config[PlatformSettings].services.token:
        return (f"no service token (none is set in {config.path}, TCXH_SERVICES_TOKEN or TCXH_SERVICES_TOKEN_FILE; "
                "name the services' ini file with -c or TCXH_CONFIG)")
    return f"the service token from {config.origin('services', 'token')}"


def _with_token(details: Any, pair: tuple[str, str] | None) -> Any:
    if pair is None:
        return details
    metadata = list(details.metadata or []) + [pair]
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


def _names(method: str | bytes) -> tuple[str, str]:
    text = method.decode() if isinstance(method, bytes) else method
    service, _, name = text.strip("/").partition("/")
    return service, name


class _UnaryToken(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the service token to unary calls and counts them."""

    def __init__(self, pair: tuple[str, str] | None) -> None:
        self._pair = pair

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(_with_token(details, self._pair), request)
        code = await call.code()
        GRPC_CLIENT_HANDLED.labels(*_names(details.method), code.name).inc()
        return call


class _StreamToken(grpc.aio.UnaryStreamClientInterceptor):
    """Adds the service token to server-streaming calls (grpc.aio takes one call kind per interceptor)."""

    def __init__(self, pair: tuple[str, str] | None) -> None:
        self._pair = pair

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._pair), request)


def open_channel(services: ServicesConfig, service: str, address: str | None = None) -> grpc.aio.Channel:
    """A channel to a service at its `[services] <service>` address, sending the shared token."""
    s = services
    target = address or s.address(service)
    pair = ("authorization", f"Bearer {s.token}") if s.token else None
    interceptors: list[grpc.aio.ClientInterceptor] = [_UnaryToken(pair), _StreamToken(pair)]
    if s.tls_ca:
        ca = open(s.tls_ca, "rb").read()
        key = open(s.tls_key, "rb").read() if s.tls_key else None
        cert = open(s.tls_cert, "rb").read() if s.tls_cert else None
        creds = grpc.ssl_channel_credentials(ca, key, cert)
        return grpc.aio.secure_channel(target, creds, options=_OPTIONS, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=_OPTIONS, interceptors=interceptors)
