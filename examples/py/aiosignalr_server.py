"""A hub served by aiosignalr (PyPI, pinned in requirements.txt): a SignalR server we did not write.

hub-client's tests (hub-client/tests/aiosignalr.rs) start this program and run the client's
calls against it, so the client is proven against a third-party server and not only against
hub-runtime.

    python aiosignalr_server.py [--port N] [--path /hub]

Port 0 (the default) takes a free port. Once listening, the program prints one line,
``listening on http://127.0.0.1:PORT/hub``, and serves until stdin closes or it is killed.

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

from aiosignalr.errors import HubException
from aiosignalr.server import Hub, IncomingStream, ServerOptions, SignalRServer

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


async def serve(port: int, path: str) -> None:
    server = SignalRServer(InteropHub, options=ServerOptions(enable_detailed_errors=False))
    host, bound = await server.serve("127.0.0.1", port, path=path)
    print(f"listening on http://{host}:{bound}{path}", flush=True)
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
    options = parser.parse_args()
    try:
        asyncio.run(serve(options.port, options.path))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
