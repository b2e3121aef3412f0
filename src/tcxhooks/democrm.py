"""`tcxhooks demo --crm bitrix24`: the demo call played into a fake CRM instead of a webhook receiver.

Starts the 3CX simulator, the fake CRM (`tcxhooks fakecrm NAME`) and `tcxhooks up` with a
`[crm:demo]` section, connects the adapter the way an admin would (Bitrix24: the portal installs the
application and calls our install handler), plays the call and prints every API call the CRM receives.
Exit 0 once the calls a CRM should get for that call arrived.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import httpx

from .demo import (
    _free_port,
    _spawn,
    _stop,
    _wait_http,
    _wait_serving,
    spawn_simulator,
    write_config,
)

NAME = "demo"  # the [crm:NAME] of the demo


@dataclass(frozen=True)
class CrmDemo:
    """How the demo runs one fake CRM: its section, its one-time setup, the calls that mean "done"."""

    section: Callable[[str, str], dict[str, str]]  # (fake CRM url, listener url) → [crm:demo] keys
    setup: Callable[[httpx.AsyncClient, str, str], Any] | None  # (client, fake url, listener url)
    expected: Callable[[bool], Sequence[tuple[str, ...]]]  # (analytics on) → calls that must arrive (any of each)


async def _install_bitrix24(client: httpx.AsyncClient, portal: str, listener: str) -> None:
    reply = await client.post(f"{portal}/fake/install", json={"url": f"{listener}/crm/{NAME}/install"}, timeout=30)
    answer = reply.json()
    print(f"  the portal installed the application: our install handler answered {answer.get('status')}")
    if answer.get("status") != 200:
        raise RuntimeError(f"the install callback was refused: {answer.get('body')}")


DEMOS = {
    "bitrix24": CrmDemo(
        section=lambda portal, listener: {
            "type": "bitrix24",
            "url": portal,
            "client_id": "local.6650e1f2a3b4c5.12345678",
            "client_secret": "fake-bitrix24-client-secret",
            "oauth_url": f"{portal}/oauth/token/",
            "default_user": "1",
            "recording": "upload",
            "language": "en",
        },
        setup=_install_bitrix24,
        # a stereo recording's transcript is attached; a mono one's text goes into the summary comment
        expected=lambda analytics: (
            [
                ("telephony.externalCall.register",),
                ("telephony.externalCall.finish",),
                ("telephony.externalCall.attachRecord",),
            ]
            + ([("telephony.call.attachTranscription", "crm.timeline.comment.add")] if analytics else [])
        ),
    ),
    "amocrm": CrmDemo(
        section=lambda account, listener: {
            "type": "amocrm",
            "url": account,
            "token": "fake-amo-long-lived-token",
            "user_map": "101=501,102=502,103=503",
            "default_user": "501",
            "language": "en",
        },
        setup=None,
        # the call waits for its recording (amoCRM calls cannot be changed), then the summary is a note on the
        # caller's lead (1002 in the fake account)
        expected=lambda analytics: (
            [("POST /api/v2/events",), ("POST /api/v4/calls",)]
            + ([("POST /api/v4/leads/1002/notes",)] if analytics else [])
        ),
    ),
    "zammad": CrmDemo(
        section=lambda server, listener: {"type": "zammad", "url": server, "token": "fake-cti-token"},
        setup=None,
        expected=lambda analytics: [("newCall",), ("answer",), ("hangup",)],
    ),
}


def _free_block(count: int) -> int:
    """A port P with P … P+count-1 all free: `tcxhooks up` gives its services metrics ports P+0 … P+3."""
    while True:
        base = _free_port()
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()


def _shown(call: dict[str, Any]) -> str:
    params = " ".join(f"{k}={v}" for k, v in call["params"].items())
    status = "" if 200 <= call["status"] < 300 else f"  → {call['status']} {call['error']}"
    return f"{call['method']:<38} {params[:150]}{status}"


async def _print_calls(
    client: httpx.AsyncClient, crm_url: str, wanted: Sequence[tuple[str, ...]], timeout: float, started: float
) -> bool:
    """Prints the fake CRM's calls as they arrive; True once one method of each wanted group was answered 2xx."""
    seen = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = (await client.get(f"{crm_url}/fake/calls", timeout=10)).json()["calls"]
        for call in calls[seen:]:
            when = "  setup  " if call["at"] < started else f"+{call['at'] - started:6.2f}s"
            print(f"  {when}  {_shown(call)}", flush=True)
        seen = len(calls)
        done = {c["method"] for c in calls if 200 <= c["status"] < 300}
        if all(done & set(group) for group in wanted):
            return True
        await asyncio.sleep(0.3)
    return False


async def run_crm_demo(crm: str, scenario: str, talk: float, keep: bool, timeout: float) -> int:
    demo = DEMOS[crm]
    folder = tempfile.mkdtemp(prefix=f"tcxhooks-demo-{crm}-")
    analytics = find_spec("faster_whisper") is not None
    sim_port, crm_port, listener_port = _free_port(), _free_port(), _free_port()
    sim_url, crm_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{crm_port}"
    listener = f"http://127.0.0.1:{listener_port}"
    delivery = {
        "dispatcher": {"listen": f"127.0.0.1:{listener_port}", "public_url": listener},
        f"crm:{NAME}": demo.section(crm_url, listener),
    }
    config = write_config(folder, sim_url, delivery, analytics, metrics_port=_free_block(4))
    print(f"tcxhooks demo --crm {crm} — work folder {folder}")
    print(f"  3CX simulator  {sim_url}")
    print(f"  fake {crm:<9} {crm_url}  (its calls: GET {crm_url}/fake/calls)")
    sim = spawn_simulator(folder, sim_port)
    fake = _spawn(["fakecrm", crm, "--port", str(crm_port)], os.path.join(folder, "crm.log"))
    up = None
    try:
        await _wait_http(sim_url + "/sim/scenarios", 30)
        await _wait_http(crm_url + "/fake/calls", 30)
        up = _spawn(["up", "-c", config], os.path.join(folder, "services.log"))
        await _wait_serving(config, 90)
        async with httpx.AsyncClient() as client:
            if demo.setup is not None:
                await demo.setup(client, crm_url, f"http://127.0.0.1:{listener_port}")
            print(f"\nplaying scenario {scenario!r}; API calls as the CRM receives them:")
            started = time.time()
            reply = await client.post(
                sim_url + "/sim/play", json={"scenario": scenario, "params": {"talk_seconds": talk}}
            )
            reply.raise_for_status()
            wanted = demo.expected(analytics)
            if not await _print_calls(client, crm_url, wanted, timeout, started):
                print(f"\nmissing CRM calls: expected {wanted}; logs in {folder}", file=sys.stderr)
                return 1
        print("\ndone: the CRM got every call it should.")
        return 0
    finally:
        if up is not None:
            _stop(up)
        _stop(fake)
        _stop(sim)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
