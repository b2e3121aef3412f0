"""`tcxhooks health`: whether a service on this host is ready, for Docker's HEALTHCHECK and exec probes.

Asks grpc.health.v1 (service "" or `--service liveness`) of every service on 127.0.0.1, each on its
`[services] health_port` (plaintext, +0..+3 in `tcxhooks up`) when one is set, else on its gRPC port
with the configured TLS; exits 0 when one answers SERVING, 1 when none does, 2 on a bad config. The
container runs one service (or `up`, all four), so "one of them" is the one this container runs.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .platform.configfile import add_config_option, find_config
from .platform.runtime import load_or_exit
from .platform.settings import SERVICE_NAMES, PlatformSettings, ServicesConfig
from .platform.tls import channel_credentials

TIMEOUT = 4.0


def _channel(services: ServicesConfig, name: str) -> grpc.Channel:
    if services.health_port:
        return grpc.insecure_channel(f"127.0.0.1:{services.health_port + SERVICE_NAMES.index(name)}")
    address = services.address(name)
    local = f"127.0.0.1:{address.rpartition(':')[2]}"
    credentials = channel_credentials(services)
    if credentials is None:
        return grpc.insecure_channel(local)
    # the certificate names the service's address, not the loopback this probe dials
    return grpc.secure_channel(
        local, credentials, options=[("grpc.ssl_target_name_override", address.rpartition(":")[0].strip("[]"))]
    )


def serving(services: ServicesConfig, service: str = "") -> bool:
    """Whether one of the services on this host answers SERVING for `service` ("" = ready)."""
    channels = [_channel(services, name) for name in SERVICE_NAMES]
    request = health_pb2.HealthCheckRequest(service=service)
    futures = [health_pb2_grpc.HealthStub(channel).Check.future(request, timeout=TIMEOUT) for channel in channels]
    return any(f.exception() is None and f.result().status == health_pb2.HealthCheckResponse.SERVING for f in futures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tcxhooks health", description="Exit 0 when a service on this host is ready (for container probes)."
    )
    add_config_option(parser)
    parser.add_argument("--service", default="", help='the health service to ask: "" (ready, the default) or liveness')
    args = parser.parse_args(argv)
    config = load_or_exit(find_config(args.config), ())
    try:
        ok = serving(config[PlatformSettings].services, args.service)
    except OSError as exc:  # a TLS file that cannot be read
        print(f"tcxhooks health: {exc}", file=sys.stderr)
        ok = False
    sys.stdout.flush()
    # os._exit: a gRPC client can hang at interpreter exit with channels left open (grpc/grpc#5084, #29560)
    os._exit(0 if ok else 1)
