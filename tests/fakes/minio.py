"""A MinIO stand-in for the bucket-init test: the S3 bucket calls and the admin API calls that
`tcxhooks.media.minio_setup` makes, with the admin payloads decrypted as MinIO does (they are
encrypted with the root secret). Every request must be signed by the root user.

    with FakeMinio(root_user, root_password) as minio:   # minio.endpoint = "127.0.0.1:<port>"
        ...; minio.buckets, minio.policies, minio.users, minio.attached
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import urllib.parse
from typing import Any

from minio.crypto import decrypt


class _Body(io.BytesIO):
    """A request body as minio.crypto.decrypt reads an HTTP response."""

    def release_conn(self) -> None:
        pass


class FakeMinio:
    def __init__(self, root_user: str, root_password: str) -> None:
        self.root_user, self.root_password = root_user, root_password
        self.buckets: set[str] = set()
        self.policies: dict[str, Any] = {}
        self.users: dict[str, str] = {}
        self.attached: dict[str, set[str]] = {}
        self.signed_by: set[str] = set()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"127.0.0.1:{self._server.server_address[1]}"

    def _admin(self, body: bytes) -> Any:
        return json.loads(decrypt(_Body(body), self.root_password))  # type: ignore[arg-type]

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                credential = self.headers.get("Authorization", "").split("Credential=")[-1].split("/")[0]
                fake.signed_by.add(credential)
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = url.path.strip("/")
                if path == "minio/admin/v3/add-canned-policy":
                    fake.policies[query["name"]] = json.loads(body)
                    return self._answer(200)
                if path == "minio/admin/v3/add-user":
                    fake.users[query["accessKey"]] = fake._admin(body)["secretKey"]
                    return self._answer(200)
                if path == "minio/admin/v3/idp/builtin/policy/attach":
                    request = fake._admin(body)
                    policies = fake.attached.setdefault(request["user"], set())
                    if set(request["policies"]) <= policies:
                        return self._answer(
                            400,
                            json.dumps(
                                {
                                    "Code": "XMinioAdminPolicyChangeAlreadyApplied",
                                    "Message": "The specified policy change is already in effect.",
                                }
                            ).encode(),
                        )
                    policies.update(request["policies"])
                    return self._answer(204)
                if "/" not in path and self.command == "HEAD":
                    return self._answer(200 if path in fake.buckets else 404)
                if "/" not in path and self.command == "PUT":
                    fake.buckets.add(path)
                    return self._answer(200)
                return self._answer(501)

            do_GET = do_PUT = do_POST = do_HEAD = _handle

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> FakeMinio:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
