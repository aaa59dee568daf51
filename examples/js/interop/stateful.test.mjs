// Stateful reconnect (WebSockets, JSON and MessagePack) through the official client built with
// `.withStatefulReconnect()`: the test drops the client's WebSocket (ws `terminate()`, no close frame) while messages
// flow both ways; the client re-attaches to the same connection with a new WebSocket (same URL, same connection
// token, no negotiate and no handshake), and both sides replay what the other has not acknowledged.
//
// Checked: a second socket was opened to the same URL; the connectionId is unchanged (and group membership kept);
// every server→client message (group sends from a second, plain client) arrives exactly once and in order; every
// client→server message (SendToConnection to the plain client, sent around the drop) is delivered exactly once and
// in order; an invocation made during the gap completes.
//
// One server serves the whole file.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

import {
    startInterop, startConnection, stopConnection, invoke, withTimeout, waitUntil, delay, signalR, WebSocket,
    CapturingLogger, OP_TIMEOUT,
} from './server.mjs';

const SUITE_TIMEOUT = 30_000;
/** Bound for everything sent around a drop to have arrived. */
const DELIVERY_TIMEOUT = 10_000;

let ctx;

before(async () => {
    ctx = await startInterop();
}, { timeout: 15_000 });

after(async () => {
    await ctx?.close();
}, { timeout: 10_000 });

/** A `ws` WebSocket subclass that records every instance the client creates, in `sockets`. */
function trackedWebSocket() {
    const sockets = [];
    class TrackedWS extends WebSocket {
        constructor(...args) {
            super(...args);
            sockets.push(this);
        }
    }
    return { TrackedWS, sockets };
}

/** Builds (does not start) a stateful-reconnect client over tracked WebSockets; see trackedWebSocket(). */
function buildStateful(path, protocol) {
    const { TrackedWS, sockets } = trackedWebSocket();
    const logger = new CapturingLogger();
    let builder = new signalR.HubConnectionBuilder()
        .withUrl(ctx.url + path, { transport: signalR.HttpTransportType.WebSockets, WebSocket: TrackedWS })
        .withStatefulReconnect()
        .configureLogging(logger);
    if (protocol === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol());
    const connection = builder.build();
    connection.logger = logger;
    return { connection, sockets };
}

const range = (from, to, prefix) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

// The two protocols run concurrently, the scenarios of each in order.
describe('stateful reconnect', { concurrency: true }, () => {
    for (const protocol of ['json', 'messagepack']) {
        describe(`stateful reconnect over WebSockets/${protocol}`, { timeout: SUITE_TIMEOUT, concurrency: 1 }, () => {
            let run = 0;

            /**
             * One scenario. `settle`: wait until everything sent before the drop has been received before dropping (so the
             * replay after re-attaching consists of duplicates the receivers must drop), or drop at once (messages may be
             * lost in flight and must be replayed). `ackWait`: ms to wait after settling, so both sides' Acks (the client
             * acks within 1 s) have trimmed the buffers and the replay starts after them. `drops`: how many times the
             * socket is dropped (one after another).
             */
            async function scenario({ settle, ackWait = 0, drops = 1 }) {
                const tag = `${protocol}-${++run}`;
                const group = `g-${tag}`;
                const { connection: a, sockets } = buildStateful(`/broadcast?user=x-${tag}`, protocol);
                const b = ctx.build(`/broadcast?user=y-${tag}`, { transport: 'WebSockets', protocol });
                const gotA = [];
                const gotB = [];
                // block bodies: a handler's return value would be taken as a client result
                a.on('Receive', (m) => { gotA.push(m); });
                b.on('Receive', (m) => { gotB.push(m); });
                let closedWith = null;
                a.onclose((err) => { closedWith = err ?? 'closed'; });
                try {
                    await startConnection(a);
                    await startConnection(b);
                    assert.equal(sockets.length, 1);
                    const idA = a.connectionId;
                    assert.ok(idA);
                    assert.equal(await invoke(a, 'GetConnectionId'), idA);
                    await invoke(a, 'JoinGroup', group);

                    const toA = []; // server → client, in order
                    const toB = []; // client → server (→ b), in order
                    const perDrop = 20;
                    for (let d = 0; d < drops; d++) {
                        const base = d * 2 * perDrop;
                        // before the drop: 20 group messages to a (from b), 10 messages from a to b
                        for (const m of range(base, base + perDrop, `g${tag}:`)) {
                            await invoke(b, 'SendToGroup', group, m);
                            toA.push(m);
                        }
                        for (const m of range(base / 2, base / 2 + perDrop / 2, `c${tag}:`)) {
                            await withTimeout(a.send('SendToConnection', b.connectionId, m), OP_TIMEOUT, 'send()');
                            toB.push(m);
                        }
                        if (settle) {
                            await waitUntil(() => gotA.length >= toA.length && gotB.length >= toB.length, DELIVERY_TIMEOUT,
                                'the messages sent before the drop');
                            await delay(ackWait);
                        }

                        const socketsBefore = sockets.length;
                        sockets[sockets.length - 1].terminate();

                        // during the gap: an invocation on a, 20 more group messages, 10 more messages from a
                        const echo = withTimeout(a.invoke('Echo', `gap ${d}`), DELIVERY_TIMEOUT, "invoke('Echo') across the drop");
                        echo.catch(() => {});
                        const fromA = (async () => {
                            for (const m of range(base / 2 + perDrop / 2, base / 2 + perDrop, `c${tag}:`)) {
                                toB.push(m);
                                await withTimeout(a.send('SendToConnection', b.connectionId, m), DELIVERY_TIMEOUT, 'send()');
                            }
                        })();
                        fromA.catch(() => {});
                        for (const m of range(base + perDrop, base + 2 * perDrop, `g${tag}:`)) {
                            await invoke(b, 'SendToGroup', group, m);
                            toA.push(m);
                        }
                        assert.equal(await echo, `gap ${d}`);
                        await fromA;

                        await waitUntil(() => gotA.length >= toA.length && gotB.length >= toB.length, DELIVERY_TIMEOUT,
                            `every message (a got ${gotA.length}/${toA.length}, b got ${gotB.length}/${toB.length})`);
                        assert.equal(sockets.length, socketsBefore + 1, 'the client opened exactly one new socket');
                        assert.equal(closedWith, null, 'the connection never closed');
                    }

                    // Barrier, then a moment for late duplicates to show up.
                    assert.equal(await invoke(a, 'Echo', 'barrier'), 'barrier');
                    assert.equal(await invoke(b, 'Echo', 'barrier'), 'barrier');
                    await delay(200);

                    assert.deepEqual(gotA, toA, 'a received every group message exactly once, in order');
                    assert.deepEqual(gotB, toB, 'b received every message from a exactly once, in order');
                    assert.equal(sockets.length, 1 + drops);
                    for (const s of sockets) assert.equal(s.url, sockets[0].url, 'every socket re-attaches to the same URL');
                    assert.match(sockets[0].url, /[?&]id=/);
                    assert.equal(a.connectionId, idA);
                    assert.equal(await invoke(a, 'GetConnectionId'), idA, 'same connection on the server');
                    assert.equal(a.state, signalR.HubConnectionState.Connected);

                    // still in the group, still connected both ways
                    const last = `g${tag}:after`;
                    await invoke(b, 'SendToGroup', group, last);
                    await waitUntil(() => gotA.includes(last), OP_TIMEOUT, 'a group message after the reconnect');
                    assert.deepEqual(a.logger.errors(), []);
                } finally {
                    await stopConnection(a);
                    await stopConnection(b);
                }
            }

            it('drop after everything sent was received: replayed duplicates are dropped on both sides', async () => {
                await scenario({ settle: true });
            });

            it('drop after both sides acknowledged: the replay resumes after the acknowledged messages', async () => {
                await scenario({ settle: true, ackWait: 1_200 });
            });

            it('drop with messages in flight: nothing is lost', async () => {
                await scenario({ settle: false });
            });

            it('two drops one after the other', async () => {
                await scenario({ settle: false, drops: 2 });
            });
        });
    }
});
