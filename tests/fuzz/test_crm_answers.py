"""Fuzz: what a CRM answers, as raw bytes on the socket, to the dispatcher's two HTTP clients: the webhook
transport and the CRM adapters' JSON client.

Status lines, headers (folded, duplicated, oversized, without a colon), framings (chunked with bad
sizes, lengths that lie, a body that never ends) and bodies of any kind. Each client either returns an
answer or raises its own error (TransportError, CrmError), which the worker records as an attempt and
retries or gives up; never anything else, never a hang past its timeout, never more than its limits read.
"""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given
from hypothesis import strategies as st

from tcxhooks.dispatcher.crm.client import JsonApi
from tcxhooks.dispatcher.crm.errors import CrmError
from tcxhooks.dispatcher.transport import Reply, Timeouts, Transport, TransportError

from .profile import deeply_nested, fuzz, json_values, run_bounded

header_names = st.sampled_from(
    ["Content-Length", "Transfer-Encoding", "Content-Type", "Retry-After", "Connection", "X-Odd"]
) | st.text("abcXYZ-_:", min_size=0, max_size=12)
header_values = st.sampled_from(
    [
        "chunked",
        "0",
        "-1",
        "99999999999",
        "gzip, chunked",
        "close",
        "application/json",
        "120",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "",
    ]
) | st.text(max_size=40)
headers = st.lists(
    st.builds(
        lambda name, value, fold: f"{name}: {value}" + ("\r\n folded" if fold else ""),
        header_names,
        header_values,
        st.booleans(),
    ),
    max_size=6,
)
status_lines = st.sampled_from(
    [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 204 No Content",
        "HTTP/1.0 500 Oops",
        "HTTP/1.1 100 Continue",
        "HTTP/1.1 301 Moved",
        "HTTP/1.1 429 Slow",
        "HTTP/1.1 999 Odd",
        "HTTP/2 200",
        "ICY 200 OK",
        "HTTP/1.1 20 OK",
        "HTTP/1.1",
        "",
    ]
) | st.text(max_size=30)
bodies = (
    st.builds(lambda v: __import__("json").dumps(v), json_values)
    | st.binary(max_size=500)
    | st.integers(1000, 5000).map(deeply_nested)
    | st.sampled_from(["5\r\nhello\r\n0\r\n\r\n", "zz\r\nbad\r\n", "ffffffffffffffff\r\nx", "3\r\nab"])
)
answers = st.builds(
    lambda status, lines, body, newline, huge: (
        (status + newline + newline.join(lines) + newline + huge + newline).encode("utf-8", "surrogatepass")
        + (body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))
    ),
    status_lines,
    headers,
    bodies,
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from(["", "X-Huge: " + "a" * 20_000, "X-Many: 1\r\n" * 300]),
)


async def serve(answer: bytes, endless: bool) -> tuple[asyncio.AbstractServer, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(65536)
            writer.write(answer)
            await writer.drain()
            while endless:  # the answer goes on for ever: a header or body that never ends
                writer.write(b"a" * 65536)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/hook"


async def both_clients(answer: bytes, endless: bool) -> None:
    server, url = await serve(answer, endless)
    transport = Transport(Timeouts(connect=2, total=3), limit=4)
    api = JsonApi("fuzz", None, timeout=3, connect_timeout=2)
    try:
        try:
            reply = await transport.post(url, b"event=ping", {"content-type": "application/x-www-form-urlencoded"})
            assert isinstance(reply, Reply) and len(reply.snippet) <= 1024
        except TransportError:
            pass
        try:
            got = await api.send("POST", url, what="fuzz call", json_body={"a": 1})
            assert isinstance(got.status, int) and len(got.text) <= 1024
        except CrmError:
            pass
    finally:
        await transport.close()
        await api.close()
        server.close()
        await server.wait_closed()


@fuzz(examples=120, deadline_ms=None)
@given(answers, st.booleans())
def test_any_crm_answer_is_an_answer_or_a_recorded_failure(answer: bytes, endless: bool) -> None:
    run_bounded(lambda: both_clients(answer, endless), 20)
