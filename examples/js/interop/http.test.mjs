// HTTP-level behaviour of the interop server, checked with Node's fetch: negotiate bodies and cookies,
// CORS, transport request errors, long polling and Server-Sent Events driven by hand, and the redirect /
// bad-negotiate helper endpoints.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

import { startInterop, withTimeout, delay, invoke, signalR, WebSocket, OP_TIMEOUT } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

/** The JSON record separator that ends every handshake and JSON hub message. */
const RS = '\x1e';
const JSON_HANDSHAKE = `{"protocol":"json","version":1}${RS}`;
const MSGPACK_HANDSHAKE = `{"protocol":"messagepack","version":1}${RS}`;
const HANDSHAKE_OK = `{}${RS}`;

/** The official clients' own message parsers, used to read what the server wrote. */
const jsonProtocol = new signalR.JsonHubProtocol();
const msgpackProtocol = new MessagePackHubProtocol();
const parseJson = (text) => jsonProtocol.parseMessages(text, signalR.NullLogger.instance);
const parseMsgpack = (buf) => msgpackProtocol.parseMessages(
    buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), signalR.NullLogger.instance);
const isPing = (m) => m.type === signalR.MessageType.Ping;

/**
 * fetch, bounded: the request is aborted after `ms` (so nothing is left hanging) and the whole body is read.
 * Resolves with { status, headers, body (Buffer), text }.
 */
async function exchange(url, init = {}, ms = OP_TIMEOUT, what = `${init.method ?? 'GET'} ${url}`) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    try {
        const res = await fetch(url, { redirect: 'manual', ...init, signal: ac.signal });
        const body = Buffer.from(await res.arrayBuffer());
        return { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
    } catch (e) {
        if (ac.signal.aborted) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
        throw e;
    } finally {
        clearTimeout(timer);
    }
}

/** POST with a content type (text/plain as browsers send it, or application/octet-stream). */
function post(url, body, contentType = 'text/plain;charset=UTF-8') {
    return exchange(url, { method: 'POST', body, headers: { 'Content-Type': contentType } });
}

/** Resolves with 'settled' or 'pending' (after a macrotask), without consuming the promise's outcome. */
async function settledState(promise) {
    return Promise.race([promise.then(() => 'settled', () => 'settled'), delay(0).then(() => 'pending')]);
}

/**
 * Reads a text/event-stream response body: SSE events (data lines, with or without the space after
 * `data:`, CRLF or LF) joined into the hub payload, split into records at the record separator.
 */
class EventStreamReader {
    constructor(res, abort) {
        this.reader = res.body.getReader();
        this.decoder = new TextDecoder();
        this.abort = abort;
        this.pendingLines = '';
        this.payload = '';
        this.records = [];
        this.ended = false;
        this.events = 0;
    }

    #feed(chunk) {
        let text = this.pendingLines + chunk;
        let carry = '';
        if (text.endsWith('\r')) {
            carry = '\r';
            text = text.slice(0, -1);
        }
        text = text.replace(/\r\n?/g, '\n');
        const events = text.split('\n\n');
        this.pendingLines = events.pop() + carry;
        for (const event of events) {
            const data = event.split('\n')
                .filter((line) => line.startsWith('data:'))
                .map((line) => line.slice(5).replace(/^ /, ''));
            if (data.length === 0) continue; // comments and other fields
            this.events++;
            this.payload += data.join('\n');
        }
        const parts = this.payload.split(RS);
        this.payload = parts.pop();
        this.records.push(...parts);
    }

    /** The next record (without RS), skipping Pings unless asked; null once the stream has ended. */
    async next(ms = OP_TIMEOUT, { keepPings = false } = {}) {
        const deadline = Date.now() + ms;
        for (;;) {
            while (this.records.length) {
                const record = this.records.shift();
                if (!keepPings && record === '{"type":6}') continue;
                return record;
            }
            if (this.ended) return null;
            const { value, done } = await withTimeout(this.reader.read(), Math.max(1, deadline - Date.now()),
                'the event stream');
            if (done) this.ended = true;
            else this.#feed(this.decoder.decode(value, { stream: true }));
        }
    }

    close() {
        this.abort.abort();
        this.reader.cancel().catch(() => {});
    }
}

function request(url, init = {}) {
    return withTimeout(fetch(url, { redirect: 'manual', ...init }), OP_TIMEOUT, `${init.method ?? 'GET'} ${url}`);
}

async function negotiate(base, path, query = '?negotiateVersion=1') {
    const res = await request(`${base}${path}/negotiate${query}`, { method: 'POST' });
    assert.equal(res.status, 200, `negotiate ${path} status`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    return { res, body: await res.json() };
}

/** Parses the Set-Cookie headers into { name: { value, attrs: { lowercased attr: value } } }. */
function parseSetCookies(res) {
    const out = {};
    for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(';').map((s) => s.trim());
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq);
        const attrMap = {};
        for (const a of attrs) {
            const i = a.indexOf('=');
            if (i < 0) attrMap[a.toLowerCase()] = true;
            else attrMap[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
        }
        out[name] = { value: pair.slice(eq + 1), attrs: attrMap };
    }
    return out;
}

describe('HTTP endpoints', { timeout: SUITE_TIMEOUT }, () => {
    let ctx;
    let base;
    /** Raw sockets and event streams opened by tests, closed before the server stops. */
    const cleanups = [];

    before(async () => {
        ctx = await startInterop();
        base = ctx.url;
    }, { timeout: 15_000 });

    after(async () => {
        await Promise.all(cleanups.map((f) => Promise.resolve().then(f).catch(() => {})));
        await ctx?.close();
    }, { timeout: 10_000 });

    const transportUrl = (token, path = '/testhub') => `${base}${path}?id=${encodeURIComponent(token)}`;

    async function negotiateToken(path = '/testhub') {
        const { body } = await negotiate(base, path);
        assert.ok(body.connectionToken, JSON.stringify(body));
        return body.connectionToken;
    }

    /** A hub connection over a raw WebSocket, handshake done (JSON). Resolves with { token, url, ws, next() }. */
    async function openHubWebSocket(path = '/testhub') {
        const token = await negotiateToken(path);
        const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${path}?id=${encodeURIComponent(token)}`);
        cleanups.push(() => ws.terminate());
        const received = [];
        const waiters = [];
        ws.on('message', (data) => {
            const text = String(data);
            const w = waiters.shift();
            if (w) w(text);
            else received.push(text);
        });
        ws.on('error', () => {});
        const next = () => received.length
            ? Promise.resolve(received.shift())
            : withTimeout(new Promise((res) => waiters.push(res)), OP_TIMEOUT, 'a WebSocket message');
        await withTimeout(new Promise((res, rej) => {
            ws.once('open', res);
            ws.once('unexpected-response', (_, r) => rej(new Error(`WebSocket upgrade answered ${r.statusCode}`)));
            ws.once('close', () => rej(new Error('WebSocket closed before open')));
        }), OP_TIMEOUT, 'the WebSocket to open');
        ws.send(JSON_HANDSHAKE);
        assert.equal(await next(), HANDSHAKE_OK);
        return { token, url: transportUrl(token, path), ws, next };
    }

    /** The status a WebSocket upgrade on `url` (http://...) gets: 101, or the refusal's status. */
    function upgradeStatus(url) {
        const ws = new WebSocket(url.replace(/^http/, 'ws'));
        cleanups.push(() => ws.terminate());
        ws.on('error', () => {});
        return withTimeout(new Promise((res) => {
            ws.once('open', () => { ws.terminate(); res(101); });
            ws.once('unexpected-response', (_, r) => { r.resume(); res(r.statusCode); ws.terminate(); });
        }), OP_TIMEOUT, `a WebSocket upgrade on ${url}`);
    }

    /**
     * A long polling connection driven by hand: negotiate, the first poll (200, empty, at once), the handshake
     * by POST, then polls until the handshake reply has arrived. Resolves with { url, rest } where rest holds
     * any bytes that followed the reply.
     */
    async function startLongPolling(protocol, path = '/testhub') {
        const url = transportUrl(await negotiateToken(path), path);
        const first = await exchange(url, {}, OP_TIMEOUT, 'the first poll');
        assert.equal(first.status, 200, 'first poll');
        assert.equal(first.body.length, 0, 'the first poll is empty');
        const hs = await post(url, protocol === 'json' ? JSON_HANDSHAKE : MSGPACK_HANDSHAKE);
        assert.equal(hs.status, 200, `handshake POST: ${hs.text}`);
        let got = Buffer.alloc(0);
        const deadline = Date.now() + OP_TIMEOUT;
        while (!got.includes(0x1e)) {
            assert.ok(Date.now() < deadline, `no handshake reply within ${OP_TIMEOUT} ms (got ${JSON.stringify(got.toString())})`);
            const r = await exchange(url, {}, OP_TIMEOUT, 'the handshake reply poll');
            assert.equal(r.status, 200, `handshake reply poll: ${r.status} ${r.text}`);
            got = Buffer.concat([got, r.body]);
        }
        const end = got.indexOf(0x1e) + 1;
        assert.equal(got.subarray(0, end).toString(), HANDSHAKE_OK);
        return { url, rest: got.subarray(end) };
    }

    describe('negotiate', () => {
        it('version 1: connectionId and a different connectionToken', async () => {
            const { body } = await negotiate(base, '/testhub');
            assert.equal(body.negotiateVersion, 1);
            assert.equal(typeof body.connectionId, 'string');
            assert.equal(typeof body.connectionToken, 'string');
            assert.ok(body.connectionId.length > 0);
            assert.ok(body.connectionToken.length > 0);
            assert.notEqual(body.connectionId, body.connectionToken);
            assert.ok(Array.isArray(body.availableTransports));
            assert.equal(body.useStatefulReconnect ?? false, false, 'not offered unless the client asks');
        });

        it('each negotiate creates a new connection', async () => {
            const [{ body: a }, { body: b }] = await Promise.all([negotiate(base, '/testhub'), negotiate(base, '/testhub')]);
            assert.notEqual(a.connectionId, b.connectionId);
            assert.notEqual(a.connectionToken, b.connectionToken);
        });

        it('version 0 when negotiateVersion is absent: no connectionToken', async () => {
            const { body } = await negotiate(base, '/testhub', '');
            assert.equal(body.negotiateVersion, 0);
            assert.equal(typeof body.connectionId, 'string');
            assert.ok(body.connectionId.length > 0);
            assert.equal(body.connectionToken, undefined);
            assert.ok(Array.isArray(body.availableTransports));
        });

        it('/testhub offers WebSockets with Text and Binary', async () => {
            const { body } = await negotiate(base, '/testhub');
            const ws = body.availableTransports.find((t) => t.transport === 'WebSockets');
            assert.ok(ws, JSON.stringify(body.availableTransports));
            assert.deepEqual([...ws.transferFormats].sort(), ['Binary', 'Text']);
            // SSE is text-only; offering Binary would make MessagePack clients pick it and fail.
            const sse = body.availableTransports.find((t) => t.transport === 'ServerSentEvents');
            if (sse) assert.deepEqual(sse.transferFormats, ['Text']);
        });

        it('/testhub-nowebsockets offers no WebSockets', async () => {
            const { body } = await negotiate(base, '/testhub-nowebsockets');
            const names = body.availableTransports.map((t) => t.transport);
            assert.ok(!names.includes('WebSockets'), JSON.stringify(names));
        });

        it('sets testCookie, testCookie2 and an expired cookie', async () => {
            const { res } = await negotiate(base, '/testhub');
            const cookies = parseSetCookies(res);
            assert.equal(cookies.testCookie?.value, 'testValue', JSON.stringify(cookies));
            assert.equal(cookies.testCookie2?.value, 'testValue2', JSON.stringify(cookies));
            assert.equal(cookies.expiredCookie?.value, 'doesntmatter', JSON.stringify(cookies));
            const { expires, 'max-age': maxAge } = cookies.expiredCookie.attrs;
            const expired = (maxAge !== undefined && Number(maxAge) <= 0) ||
                (expires !== undefined && Date.parse(expires) < Date.now());
            assert.ok(expired, `expiredCookie is not expired: ${JSON.stringify(cookies.expiredCookie)}`);
        });

        it('any .../negotiate sets the cookies (/echo too)', async () => {
            const { res, body } = await negotiate(base, '/echo');
            assert.ok(body.connectionToken);
            assert.equal(parseSetCookies(res).testCookie?.value, 'testValue');
        });

        it('the query string of the hub URL is accepted', async () => {
            const { body } = await negotiate(base, '/testhub', '?numRedirects=3&negotiateVersion=1');
            assert.equal(body.negotiateVersion, 1);
        });
    });

    describe('CORS', () => {
        const allowed = ['http://localhost:1234', 'https://localhost:5001', 'http://127.0.0.1:8080'];

        for (const origin of allowed) {
            it(`preflight from ${origin} is allowed with credentials`, async () => {
                const res = await request(`${base}/testhub/negotiate?negotiateVersion=1`, {
                    method: 'OPTIONS',
                    headers: {
                        Origin: origin,
                        'Access-Control-Request-Method': 'POST',
                        'Access-Control-Request-Headers': 'x-requested-with,x-signalr-user-agent,authorization',
                    },
                });
                assert.equal(res.status, 204);
                assert.equal(res.headers.get('access-control-allow-origin'), origin);
                assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
                const allowHeaders = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
                for (const h of ['x-requested-with', 'x-signalr-user-agent', 'authorization']) {
                    assert.ok(allowHeaders === '*' || allowHeaders.split(/\s*,\s*/).includes(h),
                        `allow-headers "${allowHeaders}" lacks ${h}`);
                }
                // POST is CORS-safelisted, so Access-Control-Allow-Methods is optional; if sent it must allow POST.
                const allowMethods = res.headers.get('access-control-allow-methods');
                if (allowMethods !== null) {
                    assert.ok(allowMethods.trim() === '*' || /\bPOST\b/i.test(allowMethods), `allow-methods "${allowMethods}"`);
                }
            });
        }

        it('the negotiate POST itself echoes an allowed origin', async () => {
            const origin = 'http://localhost:1234';
            const res = await request(`${base}/testhub/negotiate?negotiateVersion=1`, { method: 'POST', headers: { Origin: origin } });
            assert.equal(res.status, 200);
            assert.equal(res.headers.get('access-control-allow-origin'), origin);
            assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
            await res.arrayBuffer();
        });

        it('a foreign origin is not echoed', async () => {
            const origin = 'http://evil.example';
            const pre = await request(`${base}/testhub/negotiate?negotiateVersion=1`, {
                method: 'OPTIONS',
                headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' },
            });
            const acao = pre.headers.get('access-control-allow-origin');
            assert.notEqual(acao, origin);
            assert.notEqual(acao, '*');
            const res = await request(`${base}/testhub/negotiate?negotiateVersion=1`, { method: 'POST', headers: { Origin: origin } });
            assert.notEqual(res.headers.get('access-control-allow-origin'), origin);
            await res.arrayBuffer();
        });
    });

    describe('transport requests', () => {
        it('GET /testhub without id → 400', async () => {
            const res = await request(`${base}/testhub`);
            assert.equal(res.status, 400);
            await res.arrayBuffer();
        });

        it('GET /testhub?id=unknown → 404 "No Connection with that ID"', async () => {
            const res = await request(`${base}/testhub?id=unknown`);
            assert.equal(res.status, 404);
            assert.match(await res.text(), /No Connection with that ID/);
        });

        it('POST to an unknown id → 404 "No Connection with that ID" (text and binary bodies)', async () => {
            const url = `${base}/testhub?id=no-such-connection`;
            for (const [body, type] of [[JSON_HANDSHAKE, 'text/plain;charset=UTF-8'], [Buffer.from([2, 0x91, 6]), 'application/octet-stream']]) {
                const r = await post(url, body, type);
                assert.equal(r.status, 404, type);
                assert.match(r.text, /No Connection with that ID/, type);
            }
        });

        it('DELETE, an SSE GET and a WebSocket upgrade on an unknown id → 404', async () => {
            const url = `${base}/testhub?id=no-such-connection`;
            const del = await exchange(url, { method: 'DELETE' });
            assert.equal(del.status, 404);
            assert.match(del.text, /No Connection with that ID/);
            const sse = await exchange(url, { headers: { Accept: 'text/event-stream' } });
            assert.equal(sse.status, 404);
            assert.match(sse.text, /No Connection with that ID/);
            assert.equal(await upgradeStatus(url), 404);
        });

        describe('on the token of a connection running over WebSockets', () => {
            let hub;

            before(async () => {
                hub = await openHubWebSocket();
            }, { timeout: 10_000 });

            it('a long polling GET → 400 "Cannot change transports mid-connection"', async () => {
                const r = await exchange(hub.url);
                assert.equal(r.status, 400);
                assert.match(r.text, /Cannot change transports mid-connection/);
            });

            it('an SSE GET → 400 "Cannot change transports mid-connection"', async () => {
                const r = await exchange(hub.url, { headers: { Accept: 'text/event-stream' } });
                assert.equal(r.status, 400);
                assert.match(r.text, /Cannot change transports mid-connection/);
            });

            it('a POST → 405', async () => {
                const r = await post(hub.url, `{"type":1,"invocationId":"9","target":"Echo","arguments":["via POST"]}${RS}`);
                assert.equal(r.status, 405, r.text);
            });

            it('a DELETE → 400', async () => {
                const r = await exchange(hub.url, { method: 'DELETE' });
                assert.equal(r.status, 400, r.text);
            });

            it('a second WebSocket → 409', async () => {
                assert.equal(await upgradeStatus(hub.url), 409);
            });

            it('the WebSocket connection itself is unaffected by the refused requests', async () => {
                hub.ws.send(`{"type":1,"invocationId":"1","target":"Echo","arguments":["still here"]}${RS}`);
                for (;;) {
                    const messages = parseJson(await hub.next()).filter((m) => !isPing(m));
                    if (messages.length === 0) continue;
                    assert.deepEqual(messages, [{ type: 3, invocationId: '1', result: 'still here' }]);
                    break;
                }
                assert.equal(hub.ws.readyState, WebSocket.OPEN);
            });
        });
    });

    describe('long polling by hand', () => {
        it('a second poll displaces the first (204); DELETE ends the second (204) and answers 202', async () => {
            const { url, rest } = await startLongPolling('json');
            assert.equal(rest.length, 0);
            const pollA = exchange(url, {}, OP_TIMEOUT, 'poll A');
            await delay(150);
            assert.equal(await settledState(pollA), 'pending', 'poll A waits while there is nothing to send');
            const pollB = exchange(url, {}, OP_TIMEOUT, 'poll B');
            const a = await pollA;
            assert.equal(a.status, 204, `poll A: ${a.status} ${a.text}`);
            assert.equal(a.body.length, 0);
            // A ended because B arrived, so B is now the waiting poll.
            assert.equal(await settledState(pollB), 'pending', 'poll B waits');
            const del = await exchange(url, { method: 'DELETE' });
            assert.equal(del.status, 202, `DELETE: ${del.status} ${del.text}`);
            const b = await pollB;
            assert.equal(b.status, 204, `poll B: ${b.status} ${b.text}`);
            assert.equal(b.body.length, 0);
        });

        it('JSON: an invocation sent by POST comes back in the next poll', async () => {
            const { url } = await startLongPolling('json');
            const sent = await post(url, `{"type":1,"invocationId":"1","target":"Echo","arguments":["by poll"]}${RS}`);
            assert.equal(sent.status, 200);
            const r = await exchange(url);
            assert.equal(r.status, 200);
            assert.deepEqual(parseJson(r.text).filter((m) => !isPing(m)),
                [{ type: 3, invocationId: '1', result: 'by poll' }]);
            assert.equal((await exchange(url, { method: 'DELETE' })).status, 202);
        });

        it('on a long polling connection an SSE GET and a WebSocket upgrade → 400', async () => {
            const { url } = await startLongPolling('json');
            const sse = await exchange(url, { headers: { Accept: 'text/event-stream' } });
            assert.equal(sse.status, 400);
            assert.match(sse.text, /Cannot change transports mid-connection/);
            assert.equal(await upgradeStatus(url), 400);
            assert.equal((await exchange(url, { method: 'DELETE' })).status, 202);
        });

        it('MessagePack: a message split across two POSTs is put back together', async () => {
            const { url } = await startLongPolling('messagepack');
            const bytes = Buffer.from(msgpackProtocol.writeMessage(
                { type: 1, invocationId: '1', target: 'Echo', arguments: ['split'], headers: {} }));
            assert.equal((await post(url, bytes.subarray(0, 5), 'application/octet-stream')).status, 200);
            const poll = exchange(url, {}, OP_TIMEOUT, 'the Echo completion');
            await delay(100);
            assert.equal(await settledState(poll), 'pending', 'half a message is not answered');
            assert.equal((await post(url, bytes.subarray(5), 'application/octet-stream')).status, 200);
            const r = await poll;
            assert.equal(r.status, 200);
            const messages = parseMsgpack(r.body).filter((m) => !isPing(m));
            assert.equal(messages.length, 1, JSON.stringify(messages));
            assert.equal(messages[0].type, signalR.MessageType.Completion);
            assert.equal(messages[0].invocationId, '1');
            assert.equal(messages[0].result, 'split');
            assert.equal((await exchange(url, { method: 'DELETE' })).status, 202);
        });

        /** POSTs `bytes`, then expects the next poll to carry a Close whose error starts as .NET's does. */
        async function expectCloseAfter(url, bytes, detail) {
            const sent = await post(url, bytes, 'application/octet-stream');
            assert.equal(sent.status, 200, `POST: ${sent.status} ${sent.text}`);
            const r = await exchange(url, {}, OP_TIMEOUT, 'the Close message');
            assert.equal(r.status, 200, `poll: ${r.status} ${r.text}`);
            const messages = parseMsgpack(r.body).filter((m) => !isPing(m));
            assert.equal(messages.length, 1, JSON.stringify(messages));
            const [close] = messages;
            assert.equal(close.type, signalR.MessageType.Close, JSON.stringify(close));
            assert.ok(close.error?.startsWith('Connection closed with an error.'), JSON.stringify(close.error));
            assert.match(close.error, detail);
            // the connection is over
            const after = await exchange(url, {}, OP_TIMEOUT, 'the poll after the Close');
            assert.equal(after.status, 204, `poll after the Close: ${after.status} ${after.text}`);
        }

        it('MessagePack: a bad VarInt closes that connection with an error; others carry on', async () => {
            const other = await ctx.connect('/testhub', { transport: 'LongPolling', protocol: 'messagepack' });
            const { url, rest } = await startLongPolling('messagepack');
            assert.equal(rest.length, 0);
            // six length bytes, all but the last with the continuation bit: longer than a VarInt may be
            await expectCloseAfter(url, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /InvalidDataException/);
            assert.equal(await invoke(other, 'Echo', 'unaffected'), 'unaffected');
            assert.equal(await invoke(other, 'GetActiveTransportName'), 'LongPolling');
        });

        it('MessagePack: a message over 32 KB closes the connection with the maximum size error', async () => {
            const { url } = await startLongPolling('messagepack');
            const bytes = Buffer.from(msgpackProtocol.writeMessage(
                { type: 1, invocationId: '1', target: 'Echo', arguments: ['x'.repeat(40_000)], headers: {} }));
            await expectCloseAfter(url, bytes, /maximum message size of 32768B was exceeded/);
        });
    });

    describe('Server-Sent Events by hand', () => {
        it('JSON: handshake and an Echo invocation over the event stream; a Close message ends it', async () => {
            const url = transportUrl(await negotiateToken());
            const abort = new AbortController();
            const res = await withTimeout(fetch(url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal }),
                OP_TIMEOUT, 'the event stream response');
            const sse = new EventStreamReader(res, abort);
            cleanups.push(() => sse.close());
            try {
                assert.equal(res.status, 200);
                assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
                assert.match(res.headers.get('cache-control') ?? '', /no-cache/);

                assert.equal((await post(url, JSON_HANDSHAKE)).status, 200);
                assert.equal(await sse.next(), '{}', 'the handshake reply');

                const sent = await post(url, `{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}${RS}`);
                assert.equal(sent.status, 200);
                assert.deepEqual(JSON.parse(await sse.next()), { type: 3, invocationId: '1', result: 'x' });

                // a payload with line breaks still arrives whole (JSON escapes them, so one data line)
                await post(url, `{"type":1,"invocationId":"2","target":"Echo","arguments":["a\\nb\\r\\nc"]}${RS}`);
                assert.deepEqual(JSON.parse(await sse.next()), { type: 3, invocationId: '2', result: 'a\nb\r\nc' });

                // requests of other transports are refused and leave the stream alone
                const del = await exchange(url, { method: 'DELETE' });
                assert.equal(del.status, 400, del.text);
                const lp = await exchange(url);
                assert.equal(lp.status, 400, lp.text);
                assert.match(lp.text, /Cannot change transports mid-connection/);
                const second = await exchange(url, { headers: { Accept: 'text/event-stream' } });
                assert.equal(second.status, 409, second.text);

                await post(url, `{"type":1,"invocationId":"3","target":"Echo","arguments":["y"]}${RS}`);
                assert.deepEqual(JSON.parse(await sse.next()), { type: 3, invocationId: '3', result: 'y' });

                // the client's Close message: the server ends the stream (a Close of its own may come first)
                assert.equal((await post(url, `{"type":7}${RS}`)).status, 200);
                for (;;) {
                    const record = await sse.next();
                    if (record === null) break;
                    assert.equal(JSON.parse(record).type, signalR.MessageType.Close, record);
                }
                assert.ok(sse.events >= 4, `${sse.events} events`);
            } finally {
                sse.close();
            }
        });
    });

    describe('helper endpoints', () => {
        it('/echoredirect → 307 to the same URL with echo', async () => {
            const res = await request(`${base}/echoredirect/negotiate?negotiateVersion=1`, { method: 'POST' });
            assert.equal(res.status, 307);
            const location = res.headers.get('location');
            assert.ok(location, 'Location header');
            const target = new URL(location, `${base}/echoredirect/negotiate?negotiateVersion=1`);
            assert.equal(target.pathname + target.search, '/echo/negotiate?negotiateVersion=1');
            await res.arrayBuffer();
        });

        it('/redirect?baseUrl=B → {"url":"B/testHub?numRedirects=N"}, N counting up', async () => {
            const fake = 'http://example.test:1234';
            const r1 = await request(`${base}/redirect/negotiate?baseUrl=${encodeURIComponent(fake)}&negotiateVersion=1`, { method: 'POST' });
            assert.equal(r1.status, 200);
            const b1 = await r1.json();
            const m1 = /^http:\/\/example\.test:1234\/testHub\?numRedirects=(\d+)$/.exec(b1.url);
            assert.ok(m1, JSON.stringify(b1));
            // any method, and the path need not end in /negotiate
            const r2 = await request(`${base}/redirect?baseUrl=${fake}`, { method: 'GET' });
            assert.equal(r2.status, 200);
            const b2 = await r2.json();
            const m2 = /^http:\/\/example\.test:1234\/testHub\?numRedirects=(\d+)$/.exec(b2.url);
            assert.ok(m2, JSON.stringify(b2));
            assert.ok(Number(m2[1]) > Number(m1[1]), `${m1[1]} then ${m2[1]}`);
        });

        it('/bad-negotiate/negotiate → 400 "Some response from server"', async () => {
            const res = await request(`${base}/bad-negotiate/negotiate?negotiateVersion=1`, { method: 'POST' });
            assert.equal(res.status, 400);
            assert.equal(await res.text(), 'Some response from server');
        });
    });
});
