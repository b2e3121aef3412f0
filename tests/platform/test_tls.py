"""TLS on the gRPC links, both modes, with certificates made here (trustme), through real processes.

TLS: the server presents its certificate, any client verifying it with the CA gets through, with or
without a certificate of its own. Mutual TLS: only clients presenting a certificate the CA signed.
In both, the plaintext health port answers probes and `tcxhooks health` (the image's HEALTHCHECK)
passes, with or without that port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.helpers.net import free_port
from tests.helpers.services import read_config, wait_healthy, write_config

from .served import served

TOKEN = "platform-tls-test-token"
LIST_ENDPOINTS = "/tcxhooks.v1.DispatcherService/ListEndpoints"


class Pki:
    """A CA, the service's certificate (for 127.0.0.1 and localhost) and a client's, as PEM files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        self.cert, self.key = self._pair("service", self.ca.issue_cert("127.0.0.1", "localhost"))
        self.client_cert, self.client_key = self._pair("client", self.ca.issue_cert("cli.example"))
        stranger = trustme.CA().issue_cert("cli.example")
        self.stranger_cert, self.stranger_key = self._pair("stranger", stranger)

    def _write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def _pair(self, name: str, issued: trustme.LeafCert) -> tuple[Path, Path]:
        chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
        return self._write(f"{name}.pem", chain), self._write(f"{name}.key", issued.private_key_pem.bytes())

    def services(self, mutual: bool) -> dict[str, object]:
        return {
            "token": TOKEN,
            "tls_cert": self.cert,
            "tls_key": self.key,
            "tls_ca": self.ca_file,
            "tls_client_auth": str(mutual).lower(),
            "health_port": free_port(),
        }


def call(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = grpc.secure_channel(address, credentials) if credentials is not None else grpc.insecure_channel(address)
    with channel:
        try:
            channel.unary_unary(LIST_ENDPOINTS)(b"", timeout=10, metadata=[("authorization", f"Bearer {TOKEN}")])
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def health_command(config: Path, **env: str) -> int:
    """`tcxhooks health` as the image's HEALTHCHECK runs it (the config from TCXH_CONFIG)."""
    done = subprocess.run(
        [sys.executable, "-m", "tcxhooks", "health"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "TCXH_CONFIG": str(config), **env},
    )
    return done.returncode


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_server_tls_serves_any_client_that_verifies_it(tmp_path: Path, pki: Pki) -> None:
    with served(tmp_path, "dispatcher", services=pki.services(mutual=False)) as service:
        ca = pki.ca_file.read_bytes()
        assert call(service.address, grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.OK
        with_cert = grpc.ssl_channel_credentials(ca, pki.client_key.read_bytes(), pki.client_cert.read_bytes())
        assert call(service.address, with_cert) == grpc.StatusCode.OK
        assert call(service.address, None) == grpc.StatusCode.UNAVAILABLE  # plaintext gets no answer
        other_ca = grpc.ssl_channel_credentials(trustme.CA().cert_pem.bytes())
        assert call(service.address, other_ca) == grpc.StatusCode.UNAVAILABLE

        # the CLI on a host that has the CA alone
        cli = tmp_path / "cli.ini"
        cli.write_text(f"[services]\ndispatcher = {service.address}\ntoken = {TOKEN}\ntls_ca = {pki.ca_file}\n")
        listed = subprocess.run(
            [sys.executable, "-m", "tcxhooks", "endpoints", "-c", str(cli)], capture_output=True, text=True, timeout=60
        )
        assert listed.returncode == 0, listed.stderr
        assert "default" in listed.stdout
        assert_probes_pass(service.config)


def test_mutual_tls_serves_only_clients_with_a_certificate_of_the_ca(tmp_path: Path, pki: Pki) -> None:
    with served(tmp_path, "dispatcher", services=pki.services(mutual=True)) as service:
        ca = pki.ca_file.read_bytes()
        signed = grpc.ssl_channel_credentials(ca, pki.client_key.read_bytes(), pki.client_cert.read_bytes())
        assert call(service.address, signed) == grpc.StatusCode.OK
        assert call(service.address, grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.UNAVAILABLE
        stranger = grpc.ssl_channel_credentials(ca, pki.stranger_key.read_bytes(), pki.stranger_cert.read_bytes())
        assert call(service.address, stranger) == grpc.StatusCode.UNAVAILABLE
        assert_probes_pass(service.config)


def assert_probes_pass(config: Path) -> None:
    """The kubelet's gRPC probes (plaintext, on the health port) and `tcxhooks health` both pass; without
    the health port `tcxhooks health` asks the gRPC port over TLS with the config's credentials."""
    health_port = read_config(config)["services"]["health_port"]
    for service in ("", "liveness"):
        wait_healthy(f"127.0.0.1:{health_port}", 10, service)
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:  # health alone on that port
        with pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary(LIST_ENDPOINTS)(b"", timeout=10, metadata=[("authorization", f"Bearer {TOKEN}")])
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        stub = health_pb2_grpc.HealthStub(channel)
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    assert health_command(config) == 0
    assert health_command(config, TCXH_SERVICES_HEALTH_PORT="0") == 0
    assert (
        health_command(
            config, TCXH_SERVICES_HEALTH_PORT="0", TCXH_SERVICES_TLS_CA=str(Path(config).parent / "no-such-ca.pem")
        )
        == 1
    )


def test_tls_keys_that_need_each_other_are_checked_at_start(tmp_path: Path, pki: Pki) -> None:
    config = write_config(
        tmp_path,
        webhook={"url": "http://127.0.0.1:9/crm"},
        services={"token": TOKEN, "tls_cert": pki.cert, "tls_client_auth": "true"},
    )
    done = subprocess.run(
        [sys.executable, "-m", "tcxhooks", "dispatcher", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "[services] tls_key is missing" in done.stderr and "[services] tls_ca is missing" in done.stderr
