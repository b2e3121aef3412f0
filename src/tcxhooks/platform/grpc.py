"""gRPC plumbing: the server factory (auth, limits, metrics and error interceptors), client channels.

    server, port = create_server(settings.services, "127.0.0.1:50052", service="dispatcher")
    channel = open_channel(settings.services, "dispatcher")
    stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)

With `[services] token` set, every RPC except grpc.health.v1 needs `authorization: Bearer <token>`;
a wrong or missing token gets UNAUTHENTICATED before the request is read (auth.py). Channels made here
send the token themselves. Requests are held to their RPC's size (limits.py); TLS: tls.py.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import grpc

from .auth import TokenAuthInterceptor
from .config import Config
from .errors import ErrorInterceptor
from .limits import ANSWER_LIMIT, RequestGuard, RequestLimits
from .metrics import GRPC_CLIENT_HANDLED, ServerMetricsInterceptor
from .runtoken import read_run_token, run_token_path
from .settings import SERVICE_NAMES, PlatformSettings, ServicesConfig
from .tls import channel_credentials, server_credentials

_KEEPALIVE = ("grpc.keepalive_time_ms", 30_000)
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", ANSWER_LIMIT),
    ("grpc.max_send_message_length", -1),  # the server's limit is the one that counts
    _KEEPALIVE,
]
# Calls that arrive faster than a service's event loop takes them wait in gRPC's own queue. Past
# 1,000 waiting calls (grpc's default) gRPC refuses new ones at random, and the caller reads
# CANCELLED, as if it had given up itself. Our callers have deadlines and retry, and a burst of
# Publish calls is better queued than refused: refusals begin at 10,000 waiting, all at 30,000.
_SERVER_OPTIONS = [
    ("grpc.max_send_message_length", ANSWER_LIMIT),
    _KEEPALIVE,
    ("grpc.server.max_pending_requests", 10_000),
    ("grpc.server.max_pending_requests_hard_limit", 30_000),
]


def _host(address: str) -> str:
    return address.rpartition(":")[0].strip("[]")


def is_loopback(address: str) -> bool:
    """Whether host:port names this host's loopback interface (127.0.0.0/8, ::1, localhost)."""
    host = _host(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_address(address: str) -> str:
    """Where a server for `[services] <name>` = host:port binds: loopback stays loopback, else all."""
    port = address.rpartition(":")[2]
    if _host(address) == "localhost":
        return f"127.0.0.1:{port}"
    return address if is_loopback(address) else f"[::]:{port}"


def open_without_token(services: ServicesConfig) -> str:
    """Why the services would be open to anyone who reaches them ("" when they are not): a service
    address beyond loopback and no token."""
    if services.token:
        return ""
    beyond = [f"{name} = {services.address(name)}" for name in SERVICE_NAMES if not is_loopback(services.address(name))]
    if not beyond:
        return ""
    return (
        f"[services] token is empty while {', '.join(beyond)} is reachable from other hosts: anyone reaching "
        "it could call every RPC; set the same token (e.g. openssl rand -hex 32) for every service and the "
        "CLI ([services] token, TCXH_SERVICES_TOKEN or TCXH_SERVICES_TOKEN_FILE)"
    )


def create_server(
    services: ServicesConfig, address: str, *, service: str = "", limits: RequestLimits | None = None
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server bound to `address` with the shared interceptors; returns it and its port.

    `service` names the process in the refusal metric; `limits` holds each RPC to its request size."""
    limits = limits or RequestLimits(service=service)
    interceptors: list[grpc.aio.ServerInterceptor] = [
        ServerMetricsInterceptor(),
        RequestGuard(limits),
        ErrorInterceptor(),
    ]
    if services.token:
        interceptors.insert(0, TokenAuthInterceptor(services.token, service))
    options = [*_SERVER_OPTIONS, ("grpc.max_receive_message_length", limits.largest)]
    server = grpc.aio.server(interceptors=interceptors, options=options)
    port = _bind(server, listen_address(address), server_credentials(services))
    return server, port


def create_health_server(address: str) -> tuple[grpc.aio.Server, int]:
    """A plaintext server for grpc.health.v1 alone (`[services] health_port`), with gRPC's small
    default request limit; the caller adds the health servicer."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * 1024)])
    return server, _bind(server, listen_address(address), None)


def _bind(server: grpc.aio.Server, bind: str, credentials: grpc.ServerCredentials | None) -> int:
    port = server.add_secure_port(bind, credentials) if credentials else server.add_insecure_port(bind)
    if port == 0:
        raise OSError(f"cannot listen on {bind}")
    return int(port)


def describe_token(config: Config) -> str:
    """The service token a client made from `config` sends, by where it came from (never its value)."""
    services = config[PlatformSettings].services
    if not services.token:
        if read_run_token(services):
            return f"the service token of the running `tcxhooks up` ({run_token_path(services)})"
        return (
            f"no service token (none is set in {config.path}, TCXH_SERVICES_TOKEN or TCXH_SERVICES_TOKEN_FILE; "
            "name the services' ini file with -c or TCXH_CONFIG)"
        )
    return f"the service token from {config.origin('services', 'token')}"


def _with_token(details: Any, pair: tuple[str, str] | None) -> Any:
    if pair is None:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()), pair)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


def _names(method: str | bytes) -> tuple[str, str]:
    text = method.decode() if isinstance(method, bytes) else method
    service, _, name = text.strip("/").partition("/")
    return service, name


class _Token:
    """The service token's metadata pair, for the interceptors below: grpc.aio takes one call kind per
    interceptor, so each kind has its own."""

    def __init__(self, pair: tuple[str, str] | None) -> None:
        self._pair = pair


class _UnaryToken(_Token, grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the service token to unary calls and counts them."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(_with_token(details, self._pair), request)
        code = await call.code()
        GRPC_CLIENT_HANDLED.labels(*_names(details.method), code.name).inc()
        return call


class _StreamToken(_Token, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the service token to server-streaming calls."""

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._pair), request)


class _BidiToken(_Token, grpc.aio.StreamStreamClientInterceptor):
    """Adds the service token to bidirectional streaming calls (the monitor's PublishStream)."""

    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_token(details, self._pair), request_iterator)


def open_channel(services: ServicesConfig, service: str, address: str | None = None) -> grpc.aio.Channel:
    """A channel to a service at its `[services] <service>` address, sending the shared token (or, when
    none is set, the one of the `tcxhooks up` running with these addresses)."""
    target = address or services.address(service)
    token = services.token or read_run_token(services)
    pair = ("authorization", f"Bearer {token}") if token else None
    interceptors: list[grpc.aio.ClientInterceptor] = [_UnaryToken(pair), _StreamToken(pair), _BidiToken(pair)]
    credentials = channel_credentials(services)
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=_CHANNEL_OPTIONS, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS, interceptors=interceptors)
