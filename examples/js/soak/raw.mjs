// Raw-protocol clients for the soak test's faults: what the official client never does on purpose
// (drop a socket mid-poll, stop reading, vanish after negotiating stateful reconnect). JSON hub
// protocol only; every wait is bounded.
//
// Not a test file itself (node --test only runs *.test.mjs).

import http from 'node:http';

import { WebSocket, withTimeout, OP_TIMEOUT } from '../interop/server.mjs';

const RS = '\x1e';

/** `path` (which may carry a query) with `extra` query parameters appended. */
export function withQuery(path, extra) {
    return path + (path.includes('?') ? '&' : '?') + extra;
}

/** POST {path}/negotiate (version 1); resolves with the connection token. */
export async function negotiate(url, path, { stateful = false } = {}) {
    const [base, query = ''] = path.split('?');
    let target = `${url}${base}/negotiate?negotiateVersion=1`;
    if (query) target += `&${query}`;
    if (stateful) target += '&useStatefulReconnect=true';
    const res = await withTimeout(fetch(target, { method: 'POST', signal: AbortSignal.timeout(OP_TIMEOUT) }),
        OP_TIMEOUT, `POST ${target}`);
    if (res.status !== 200) throw new Error(`negotiate answered ${res.status}: ${await res.text()}`);
    const body = await res.json();
    if (stateful && body.useStatefulReconnect !== true) throw new Error('negotiate did not offer stateful reconnect');
    return body.connectionToken;
}

/** One JSON hub message as sent on the wire. */
export function frame(message) {
    return JSON.stringify(message) + RS;
}

/**
 * Collects the JSON hub messages of a text stream (WebSocket frames, SSE data, poll bodies) and
 * lets a caller wait for one matching a predicate. The first record is the handshake reply.
 */
export class Inbox {
    constructor() {
        this.messages = [];
        this.pending = '';
        this.waiters = [];
    }

    push(text) {
        this.pending += text;
        let end;
        while ((end = this.pending.indexOf(RS)) >= 0) {
            const record = this.pending.slice(0, end);
            this.pending = this.pending.slice(end + 1);
            this.messages.push(JSON.parse(record));
        }
        this.waiters = this.waiters.filter((w) => !w.check());
    }

    /** Resolves with the first message (oldest first) for which `predicate` holds. */
    waitFor(predicate, what, ms = OP_TIMEOUT) {
        return withTimeout(new Promise((resolve) => {
            const check = () => {
                const found = this.messages.find(predicate);
                if (found) resolve(found);
                return !!found;
            };
            if (!check()) this.waiters.push({ check });
        }), ms, what);
    }

    /** Waits for the handshake reply (an empty object); fails on a handshake error. */
    async handshake() {
        const reply = await this.waitFor(() => true, 'the handshake reply');
        if (reply.error) throw new Error(`handshake refused: ${reply.error}`);
    }

    /** Waits for the Completion of invocation `id`; fails if it carries an error. */
    async completion(id) {
        const done = await this.waitFor((m) => m.type === 3 && m.invocationId === id, `the completion of ${id}`);
        if (done.error) throw new Error(`invocation ${id} failed: ${done.error}`);
        return done.result;
    }
}

/** An invocation message. */
export function invocation(id, target, ...args) {
    return frame({ type: 1, invocationId: id, target, arguments: args });
}

/**
 * A WebSocket connection past its handshake (JSON; version 2 with stateful reconnect, which the
 * server then offers). Returns `{ ws, inbox }`.
 */
export async function openWebSocket(url, path, { stateful = false } = {}) {
    const token = await negotiate(url, path, { stateful });
    const target = withQuery(url.replace(/^http/, 'ws') + path, `id=${encodeURIComponent(token)}`);
    const ws = new WebSocket(target);
    const inbox = new Inbox();
    ws.on('message', (data) => inbox.push(data.toString()));
    ws.on('error', () => {});
    await withTimeout(new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
    }), OP_TIMEOUT, 'the WebSocket to open');
    ws.send(frame({ protocol: 'json', version: stateful ? 2 : 1 }));
    await inbox.handshake();
    return { ws, inbox };
}

/** An HTTP request on its own socket (no keep-alive), so destroying it drops exactly that TCP connection. */
export function request(target, { method = 'GET', headers = {}, body } = {}) {
    const req = http.request(target, { method, headers, agent: false });
    req.on('error', () => {});
    const response = new Promise((resolve, reject) => {
        req.once('response', resolve);
        req.once('error', reject);
    });
    response.catch(() => {}); // a request dropped on purpose: its awaiter, if any, still sees the rejection
    req.end(body);
    return { req, response };
}

/** POSTs one body to a connection (SSE and Long Polling send this way); fails unless 200. */
export async function post(target, body) {
    const { response } = request(target, {
        method: 'POST', headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body,
    });
    const res = await withTimeout(response, OP_TIMEOUT, `POST ${target}`);
    res.resume();
    if (res.statusCode !== 200) throw new Error(`POST answered ${res.statusCode}`);
}

/** Reads a whole response body as text. */
export function readBody(res) {
    return new Promise((resolve, reject) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => { text += chunk; });
        res.once('end', () => resolve(text));
        res.once('error', reject);
    });
}

/**
 * A Server-Sent Events connection past its handshake. Returns `{ req, inbox, target }`
 * (`req.destroy()` drops the event stream's TCP connection).
 */
export async function openEventStream(url, path) {
    const token = await negotiate(url, path);
    const target = withQuery(url + path, `id=${encodeURIComponent(token)}`);
    const { req, response } = request(target, { headers: { Accept: 'text/event-stream' } });
    const res = await withTimeout(response, OP_TIMEOUT, 'the event stream');
    if (res.statusCode !== 200) throw new Error(`the event stream answered ${res.statusCode}`);
    const inbox = new Inbox();
    let lines = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
        lines += chunk;
        let end;
        while ((end = lines.indexOf('\n')) >= 0) {
            const line = lines.slice(0, end).replace(/\r$/, '');
            lines = lines.slice(end + 1);
            if (line.startsWith('data:')) inbox.push(line.slice(5).replace(/^ /, ''));
        }
    });
    res.on('error', () => {});
    await post(target, frame({ protocol: 'json', version: 1 }));
    await inbox.handshake();
    return { req, inbox, target };
}

/**
 * A Long Polling connection past its handshake, the way the official client starts one (a first
 * poll, then the handshake POST). `poll()` runs one poll and feeds the inbox; `pollThenDrop()`
 * starts a poll that has nothing to return and drops its TCP connection mid-poll.
 */
export async function openLongPolling(url, path) {
    const token = await negotiate(url, path);
    const target = withQuery(url + path, `id=${encodeURIComponent(token)}`);
    const inbox = new Inbox();
    const poll = async () => {
        const { response } = request(target);
        const res = await withTimeout(response, OP_TIMEOUT, 'a poll');
        const text = await withTimeout(readBody(res), OP_TIMEOUT, 'a poll body');
        if (res.statusCode !== 200) throw new Error(`a poll answered ${res.statusCode}: ${text}`);
        inbox.push(text);
    };
    await poll();
    await post(target, frame({ protocol: 'json', version: 1 }));
    while (inbox.messages.length === 0) await poll();
    await inbox.handshake();
    const pollThenDrop = async (afterMs) => {
        const { req } = request(target);
        await new Promise((resolve) => setTimeout(resolve, afterMs));
        req.destroy();
    };
    return { inbox, target, poll, pollThenDrop };
}
