// The soak test's episodes: one short, self-checking piece of client behaviour each, either well
// behaved (official client, every transport and protocol) or a fault (a drop, a panic, an
// abandoned upload, a client that never answers, never comes back, or never reads). Each episode
// throws when the server does not behave; the workload records the failure and goes on.
//
// Not a test file itself (node --test only runs *.test.mjs).

import {
    buildConnection, startConnection, stopConnection, invoke, nextCall, withTimeout, waitUntil, delay,
    signalR, OP_TIMEOUT,
} from '../interop/server.mjs';
import { openWebSocket, openEventStream, openLongPolling, invocation, post, frame } from './raw.mjs';

/** How long a fault's consequence may take to show (the server runs with --short-timeouts). */
const FAULT_TIMEOUT = 15_000;

const DIVIDE_ERROR = "An unexpected error occurred invoking 'Divide' on the server.";

let serial = 0;
/** A name no other episode uses (groups, users). */
function unique(prefix) {
    serial += 1;
    return `${prefix}-${process.pid}-${serial}`;
}

/** Runs `body(connection)` on a started official-client connection, stopping it afterwards. */
async function withClient(url, path, combo, body, { setup = () => {}, quiet = true } = {}) {
    const connection = buildConnection(url, path, { ...combo, quiet });
    setup(connection);
    try {
        await startConnection(connection);
        await body(connection);
    } finally {
        await stopConnection(connection);
    }
}

/** Well-behaved traffic: join a group, hear a group send, echo, a user send, a stream, an upload. */
export async function normal(url, combo) {
    const user = unique('user');
    const group = unique('group');
    await withClient(url, `/broadcast?user=${user}`, combo, async (c) => {
        await invoke(c, 'JoinGroup', group);
        const heard = nextCall(c, 'Receive');
        await invoke(c, 'SendToGroup', group, 'to the group');
        assertEqual((await heard)[0], 'to the group', 'group message');
        const toUser = nextCall(c, 'Receive');
        await invoke(c, 'SendToUser', user, 'to the user');
        assertEqual((await toUser)[0], 'to the user', 'user message');
        assertEqual(await invoke(c, 'Echo', 'echo'), 'echo', 'Echo');
        // Leave explicitly every other time; otherwise the connection's end must empty the group.
        if (serial % 2 === 0) await invoke(c, 'LeaveGroup', group);
    });
    await withClient(url, '/testhub', combo, async (c) => {
        const items = [];
        await withTimeout(new Promise((resolve, reject) => {
            c.stream('Stream').subscribe({ next: (i) => items.push(i), complete: resolve, error: reject });
        }), OP_TIMEOUT, 'Stream');
        assertEqual(items.join(','), 'a,b,c', 'Stream items');
        const upload = new signalR.Subject();
        const concat = invoke(c, 'StreamingConcat', upload);
        for (const item of ['x', 'y', 'z']) upload.next(item);
        upload.complete();
        assertEqual(await concat, 'xyz', 'StreamingConcat');
    });
}

/** A hub method that panics (Divide by zero): an error for the caller, the connection lives on. */
export async function panic(url, combo) {
    await withClient(url, '/testhub', combo, async (c) => {
        let error = null;
        try {
            await invoke(c, 'Divide', 1, 0);
        } catch (e) {
            error = e;
        }
        if (!error || !String(error.message).includes(DIVIDE_ERROR)) {
            throw new Error(`Divide(1, 0) should fail with "${DIVIDE_ERROR}", got ${error ? error.message : 'a result'}`);
        }
        assertEqual(await invoke(c, 'Echo', 'after the panic'), 'after the panic', 'Echo after the panic');
    });
}

/** An upload the client starts and never completes: the connection stops with it open. */
export async function abandonedUpload(url, combo) {
    await withClient(url, '/testhub', combo, async (c) => {
        const upload = new signalR.Subject();
        c.invoke('StreamingConcat', upload).catch(() => {});
        upload.next('never');
        upload.next('finished');
        assertEqual(await invoke(c, 'Echo', 'mid-upload'), 'mid-upload', 'Echo during an upload');
    });
}

/** A server-to-client stream the client cancels: the hub sees the cancellation. */
export async function cancelledStream(url, combo) {
    await withClient(url, '/testhub', combo, async (c) => {
        const canceled = nextCall(c, 'StreamCanceled', FAULT_TIMEOUT);
        const subscription = c.stream('InfiniteStream').subscribe({ next() {}, complete() {}, error() {} });
        await delay(50);
        subscription.dispose();
        await canceled;
    });
}

/** A client that never answers a client result: GET /clientresult/{id} ends with an error. */
export async function clientResultTimeout(url, combo) {
    const setup = (c) => c.on('Result', () => new Promise(() => {}));
    await withClient(url, '/testhub', combo, async (c) => {
        const res = await withTimeout(fetch(`${url}/clientresult/${encodeURIComponent(c.connectionId)}`,
            { signal: AbortSignal.timeout(FAULT_TIMEOUT) }), FAULT_TIMEOUT, 'GET /clientresult');
        const text = await res.text();
        if (res.status !== 200 || text === '' || /^-?\d+$/.test(text)) {
            throw new Error(`/clientresult for a client that never answers gave ${res.status} '${text}'`);
        }
    }, { setup });
}

/** A WebSocket dropped without a close frame, right after joining a group. */
export async function webSocketDrop(url) {
    const { ws, inbox } = await openWebSocket(url, `/broadcast?user=${unique('wsdrop')}`);
    ws.send(invocation('1', 'JoinGroup', unique('wsdrop-group')));
    await inbox.completion('1');
    ws.terminate();
}

/** A stateful-reconnect client that drops its socket and never comes back. */
export async function statefulGone(url) {
    const { ws, inbox } = await openWebSocket(url, `/broadcast?user=${unique('gone')}`, { stateful: true });
    ws.send(invocation('1', 'JoinGroup', unique('gone-group')));
    await inbox.completion('1');
    ws.terminate();
}

/** A Server-Sent Events stream dropped mid-stream, after joining a group. */
export async function eventStreamDrop(url) {
    const { req, inbox, target } = await openEventStream(url, `/broadcast?user=${unique('ssedrop')}`);
    await post(target, invocation('1', 'JoinGroup', unique('ssedrop-group')));
    await inbox.completion('1');
    req.destroy();
}

/** A long poll whose TCP connection drops while it waits, after joining a group. */
export async function pollDrop(url) {
    const lp = await openLongPolling(url, `/broadcast?user=${unique('polldrop')}`);
    await post(lp.target, invocation('1', 'JoinGroup', unique('polldrop-group')));
    while (!lp.inbox.messages.some((m) => m.invocationId === '1')) await lp.poll();
    await lp.inbox.completion('1');
    await lp.pollThenDrop(100);
}

/**
 * A consumer that stops reading while a sender floods its group: the server must close it (its
 * outbox is bounded) without the sender ever waiting, and forget it.
 */
export async function slowConsumer(url, { messages = 3000, size = 4096 } = {}) {
    const group = unique('slow-group');
    const { ws, inbox } = await openWebSocket(url, `/broadcast?user=${unique('slow')}`);
    ws.send(invocation('1', 'JoinGroup', group));
    await inbox.completion('1');
    let closed = false;
    ws.on('close', () => { closed = true; });
    // Pings keep it clear of the client timeout: only not reading may get it closed.
    const pings = setInterval(() => { if (!closed) ws.send(frame({ type: 6 })); }, 500);
    ws._socket.pause(); // ws 7 (the client's own copy) has no pause(): stop reading the TCP socket
    const payload = 'x'.repeat(size);
    try {
        await flood(url, group, payload, messages);
        ws._socket.resume();
        await waitUntil(() => closed, FAULT_TIMEOUT, 'the server to close the consumer that stopped reading');
    } finally {
        clearInterval(pings);
        ws.terminate();
    }
    const received = inbox.messages.filter((m) => m.type === 1 && m.target === 'Receive').length;
    if (received >= messages) throw new Error(`the slow consumer got all ${messages} messages: it was never dropped`);
}

/** Sends `messages` copies of `payload` to `group` from a fresh client, then checks it still answers. */
async function flood(url, group, payload, messages) {
    await withClient(url, `/broadcast?user=${unique('flood')}`, { transport: 'WebSockets', protocol: 'messagepack' },
        async (sender) => {
            for (let i = 0; i < messages; i++) {
                await withTimeout(sender.send('SendToGroup', group, payload), OP_TIMEOUT, 'send() to the slow group');
            }
            assertEqual(await invoke(sender, 'Echo', 'barrier'), 'barrier', 'the sender, after flooding');
        });
}

function assertEqual(actual, expected, what) {
    if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
