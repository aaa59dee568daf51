"""A hub served by aiosignalr (PyPI, pinned in requirements.txt): a SignalR server we did not write.

hub-client's tests (hub-client/tests/aiosignalr.rs) start this program and run the client's
calls against it, so the client is proven against a third-party server and not only against
hub-runtime.

    python aiosignalr_server.py [--port N] [--path /hub] [--long-polling-timeout S] [--as-released]

Port 0 (the default) takes a free port. Once listening, the program prints one line,
``listening on http://127.0.0.1:PORT/hub``, and serves until stdin closes or it is killed.

Where aiosignalr 0.1.1 departs from the reference protocol (ASP.NET Core SignalR), this
program patches it (MessagePack headers, long polling: see ``work_around_messagepack_headers``
and ``ReferenceLongPollingServer``); ``--as-released`` serves it unpatched, for the test that
pins those deviations.

aiosignalr matches a hub method by its Python name, ignoring case, so the methods carry the
names the client calls (``Echo``, ``StreamingConcat``). A method returns a value only when its
return is annotated: a method without an annotation completes without a result.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

from aiosignalr.errors import HubException
from aiosignalr.protocol import messagepack_protocol
from aiosignalr.server import Hub, IncomingStream, ServerOptions, SignalRServer
from aiosignalr.server.transports import LongPollingServerTransport

# What each `Endless` stream saw, by the key its caller chose: "started", then "cancelled"
# once the client's CancelInvocation reached it.
ENDLESS_STATES: dict[str, str] = {}


class InteropHub(Hub):
    """The methods the client's tests call."""

    async def Echo(self, message: str) -> str:  # noqa: N802 - the name the client calls
        return message

    async def Add(self, a: int, b: int) -> int:  # noqa: N802
        return a + b

    async def Counter(self, count: int) -> AsyncIterator[int]:  # noqa: N802
        for i in range(count):
            yield i

    async def Letters(self) -> AsyncIterator[str]:  # noqa: N802
        for letter in ("a", "b", "c"):
            yield letter

    async def Endless(self, key: str) -> AsyncIterator[int]:  # noqa: N802
        """Yields forever until the client cancels; records the cancellation under `key`."""
        ENDLESS_STATES[key] = "started"
        i = 0
        try:
            while True:
                yield i
                i += 1
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            ENDLESS_STATES[key] = "cancelled"
            raise

    async def EndlessState(self, key: str) -> str:  # noqa: N802
        return ENDLESS_STATES.get(key, "unknown")

    async def FailingStream(self) -> AsyncIterator[int]:  # noqa: N802
        yield 1
        raise HubException("the stream broke")

    async def StreamingConcat(self, stream: IncomingStream) -> str:  # noqa: N802
        parts = [str(item) async for item in stream]
        return "".join(parts)

    async def SumUpload(self, label: str, stream: IncomingStream) -> str:  # noqa: N802
        total = 0
        async for item in stream:
            total += int(item)
        return f"{label}={total}"

    async def UploadEcho(self, stream: IncomingStream) -> AsyncIterator[str]:  # noqa: N802
        """A server-to-client stream fed by a client-to-server stream."""
        async for item in stream:
            yield str(item).upper()

    async def Fail(self, message: str) -> str:  # noqa: N802
        """A hub error: aiosignalr sends a HubException's text as it is."""
        raise HubException(message)

    async def Crash(self) -> str:  # noqa: N802
        """Any other exception: aiosignalr sends a generic text (no details by default)."""
        raise RuntimeError("secret detail")

    async def NotifyMe(self, text: str, count: int) -> None:  # noqa: N802
        """Calls the caller's `Notify` handler `count` times, then completes."""
        for i in range(count):
            await self.clients.caller.send("Notify", text, i)

    async def AskClient(self, question: str) -> str:  # noqa: N802
        """A client result: the caller's `Confirm` handler answers; its error fails this call."""
        answer = await self.clients.caller.invoke("Confirm", question)
        return f"client said {answer}"


# How long a long-polling connection may go without a poll after its last one ended before
# the server ends it (the reference server's default disconnect timeout is 15 s; a few seconds
# are enough here).
POLL_GRACE = 5.0


class ReferenceLongPollingServer(SignalRServer):
    """aiosignalr's server with its long polling brought in line with the reference server.

    1. The first poll of a connection must be answered at once, empty: it tells the client the
       connection is established, and the reference clients (hub-client too) send the handshake
       only after it. aiosignalr holds it until data comes or the poll times out, so a client
       starts only after the poll timeout (15 s by default).
    2. A connection may be ended for want of polls only some time after its last poll ended.
       aiosignalr ends it the poll timeout after the last poll *started*, which is when an idle
       poll ends: the client's next poll then finds the connection gone (404).
    """

    async def handle_longpolling(self, request: Any, response: Any) -> None:
        record = await self._resolve_record(request.query.get("id"))
        if record is not None and record.lp_transport is None:
            # A transport with its "data ready" flag set: the poll returns at once, empty.
            transport = LongPollingServerTransport()
            transport._data_event.set()  # noqa: SLF001
            record.lp_transport = transport
        await super().handle_longpolling(request, response)

    async def _lp_idle_watch(self, record: Any, ctx: Any) -> None:
        try:
            await asyncio.wait_for(ctx.wait_closed(), timeout=self.options.long_polling_timeout + POLL_GRACE)
        except TimeoutError:
            await self._teardown(ctx)
        except asyncio.CancelledError:
            pass


def work_around_messagepack_headers() -> None:
    """StreamItem, Completion and CancelInvocation must carry their headers as a map (an empty
    one: the byte 0x80). aiosignalr writes the integer 0x80 (bytes cc 80) instead, which the
    reference reader (and hub-client's) refuses: "Reading map length for 'headers' failed.".
    """
    messagepack_protocol._EMPTY_HEADERS = {}  # noqa: SLF001 - the module's own constant


async def serve(options: argparse.Namespace) -> None:
    server_options = ServerOptions(long_polling_timeout=options.long_polling_timeout)
    if options.as_released:
        server = SignalRServer(InteropHub, options=server_options)
    else:
        work_around_messagepack_headers()
        server = ReferenceLongPollingServer(InteropHub, options=server_options)
    host, bound = await server.serve("127.0.0.1", options.port, path=options.path)
    print(f"listening on http://{host}:{bound}{options.path}", flush=True)
    # Serve until stdin closes: a test that starts this program and dies takes it along.
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stdin_closed.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    try:
        await stdin_closed.wait()
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="the port (0: a free one, printed)")
    parser.add_argument("--path", default="/hub", help="the hub's path")
    parser.add_argument(
        "--long-polling-timeout",
        type=float,
        default=15.0,
        help="seconds a poll waits for data (aiosignalr's default: 15)",
    )
    parser.add_argument(
        "--as-released",
        action="store_true",
        help="aiosignalr exactly as released, without this program's work-arounds for its deviations",
    )
    options = parser.parse_args()
    try:
        asyncio.run(serve(options))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
