"""Conformance script: the official Python SDK (centrifuge-python, PyPI) against a Confab
deployment, confab-server alone or Centrifugo with confab-server as its backend. It speaks the
Centrifugo client protocol and Confab's documented RPC methods only (see js_client.mjs).

Env: SERVER_URL (ws://.../connection/websocket), TOKEN_URL (GET -> a fresh IdP access token),
CHAT_TOKEN_URL (optional: POST with `Authorization: Bearer <IdP token>` -> {token}; without it
the IdP token itself connects), ROOM (room id). Prints one JSON line with what it observed; the
Rust driver asserts on it.
"""

import asyncio
import json
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    ConnectingContext,
    DisconnectedContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)
from centrifuge.exceptions import ReplyError
from centrifuge.types import StreamPosition

SERVER_URL = os.environ["SERVER_URL"]
TOKEN_URL = os.environ["TOKEN_URL"]
CHAT_TOKEN_URL = os.environ.get("CHAT_TOKEN_URL", "")
ROOM = os.environ.get("ROOM", "general")
CHANNEL = f"room:{ROOM}"
DEADLINE_S = 50

result = {
    "ok": False,
    "connected": False,
    "token_calls": 0,
    "received_own": False,
    "history_has_own": False,
    "publish_after_refresh": False,
    "disconnect_codes": [],
    "connecting_codes": [],
    "recovered": False,
    "was_recovering": False,
    "missed_ids_in_order": False,
}
state = {"client": "disconnected"}
received = []
subscribed_events = []


def fail(msg):
    result["error"] = msg
    print(json.dumps(result), flush=True)
    os._exit(1)


async def wait_for(what, cond, timeout=20.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.025)


def _fetch_token():
    with urllib.request.urlopen(TOKEN_URL, timeout=10) as resp:
        access = resp.read().decode().strip()
    if not CHAT_TOKEN_URL:
        return access
    req = urllib.request.Request(
        CHAT_TOKEN_URL, method="POST", headers={"Authorization": f"Bearer {access}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["token"]


async def get_token():
    result["token_calls"] += 1
    return await asyncio.get_running_loop().run_in_executor(None, _fetch_token)


async def send(client, text):
    """How Confab sends: the RPC `messages.send` (the backend stores, then publishes)."""
    msg_id = str(uuid.uuid4())
    res = await client.rpc(
        "messages.send", {"room": ROOM, "id": msg_id, "text": text, "ts": int(time.time() * 1000)}
    )
    return {"id": msg_id, **res.data}


async def code_of(awaitable):
    """The error code of a failed call, or 0 when it succeeded."""
    try:
        await awaitable
        return 0
    except ReplyError as e:
        return e.code


class Proxy:
    """TCP proxy so the test can drop the connection like a network does and keep it down."""

    def __init__(self, target):
        parsed = urllib.parse.urlparse(target)
        self.host, self.port, self.path = parsed.hostname, parsed.port, parsed.path
        self.up = True
        self.writers = set()
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}{self.path}"

    async def handle(self, reader, writer):
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update({writer, up_writer})

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()
                self.writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def down(self):
        self.up = False
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()


class ClientEvents(ClientEventHandler):
    async def on_connected(self, ctx: ConnectedContext) -> None:
        state["client"] = "connected"
        result["connected"] = True

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        state["client"] = "connecting"
        result["connecting_codes"].append(ctx.code)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        state["client"] = "disconnected"
        result["disconnect_codes"].append(ctx.code)


class SubEvents(SubscriptionEventHandler):
    async def on_publication(self, ctx: PublicationContext) -> None:
        data = ctx.pub.data
        received.append({"id": data.get("id"), "offset": ctx.pub.offset, "author": data.get("author")})

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        subscribed_events.append({"was_recovering": ctx.was_recovering, "recovered": ctx.recovered})


async def main():
    proxy = Proxy(SERVER_URL)
    url = await proxy.start()
    client = Client(url, events=ClientEvents(), get_token=get_token, min_reconnect_delay=0.1, max_reconnect_delay=0.3)
    await client.connect()
    await client.ready(timeout=10)
    await client.rpc("rooms.join", {"id": ROOM})

    sub = client.new_subscription(CHANNEL, events=SubEvents(), recoverable=True, positioned=True)
    await sub.subscribe()
    await sub.ready(timeout=10)

    own = await send(client, "hello from centrifuge-python")
    await wait_for("own message", lambda: any(p["id"] == own["id"] for p in received))
    own_pub = next(p for p in received if p["id"] == own["id"])
    result["received_own"] = True
    result["sent_offset_matches"] = own_pub["offset"] == own["offset"]
    result["sent_epoch_set"] = isinstance(own.get("epoch"), str) and len(own["epoch"]) > 0
    result["own_author"] = own_pub["author"]

    # A client's own publish: confab-server accepts it, Centrifugo refuses it.
    published = {"id": str(uuid.uuid4()), "author": "someone-else", "text": "published", "ts": 1}
    result["client_publish_code"] = await code_of(sub.publish(published))
    if result["client_publish_code"] == 0:
        await wait_for("own publication", lambda: any(p["id"] == published["id"] for p in received))
        result["client_publish_author"] = next(p for p in received if p["id"] == published["id"])["author"]

    hist = await sub.history(limit=-1)
    result["history_has_own"] = any(p.data.get("id") == own["id"] for p in hist.publications)
    result["history_epoch_is_sent_epoch"] = hist.epoch == own["epoch"]
    since = await sub.history(limit=10, since=StreamPosition(offset=own["offset"] - 1, epoch=""))
    result["history_since_empty_epoch_first"] = (
        len(since.publications) > 0 and since.publications[0].data.get("id") == own["id"]
    )

    unsubscribed = []

    class Refused(SubscriptionEventHandler):
        async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
            unsubscribed.append(ctx.code)

    unknown = client.new_subscription("room:no-such-room", events=Refused())
    await unknown.subscribe()
    await wait_for("the unknown room refused", lambda: len(unsubscribed) > 0)
    client.remove_subscription(unknown)
    result["unknown_room_code"] = unsubscribed[0]
    result["unknown_method_code"] = await code_of(client.rpc("no.such.method", {}))
    result["bad_send_code"] = await code_of(client.rpc("messages.send", {"room": ROOM, "text": "no id"}))

    await wait_for("token refresh through get_token", lambda: result["token_calls"] >= 3, timeout=30)
    after = await send(client, "after refresh")
    await wait_for("message after refresh", lambda: any(p["id"] == after["id"] for p in received))
    result["publish_after_refresh"] = state["client"] == "connected"

    proxy.down()
    await wait_for("the SDK to notice the drop", lambda: state["client"] != "connected")
    publisher = Client(SERVER_URL, get_token=get_token)
    await publisher.connect()
    await publisher.ready(timeout=10)
    missed = []
    for i in range(3):
        missed.append((await send(publisher, f"missed {i}"))["id"])
    await publisher.disconnect()
    before = len(subscribed_events)
    proxy.up = True
    await wait_for("resubscribe after reconnect", lambda: len(subscribed_events) > before)
    last = subscribed_events[-1]
    result["was_recovering"] = last["was_recovering"]
    result["recovered"] = last["recovered"]
    await wait_for("missed publications", lambda: all(any(p["id"] == m for p in received) for m in missed))
    order = [p["id"] for p in received if p["id"] in missed]
    result["missed_ids_in_order"] = order == missed
    result["missed_count"] = len(order)

    result["ok"] = True
    await client.disconnect()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), DEADLINE_S))
    except Exception as e:  # report, then fail: the driver shows this line
        fail(f"{type(e).__name__}: {e}")
    sys.exit(0)
