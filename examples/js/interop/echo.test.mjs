// /echo: a raw connection (no hub protocol) that echoes every WebSocket message in its own frame type,
// but only for requests carrying the cookie testCookie. Driven with the `ws` package the official client
// already depends on in Node (no extra dependency).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startInterop, withTimeout, WebSocket, OP_TIMEOUT } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

/** A WebSocket with a message queue; works with ws 7 (string for text) and ws 8+ (isBinary flag). */
class RawSocket {
    constructor(url, headers = {}) {
        this.queue = [];
        this.waiters = [];
        this.ws = new WebSocket(url, { headers });
        this.opened = new Promise((res, rej) => {
            this.ws.once('open', res);
            this.ws.once('close', () => rej(new Error('closed before open')));
        });
        this.opened.catch(() => {});
        this.closed = new Promise((res) => this.ws.once('close', (code, reason) => res({ code, reason: String(reason) })));
        this.ws.on('error', (e) => { this.error = e; });
        this.ws.on('message', (data, isBinary) => {
            const binary = isBinary ?? typeof data !== 'string';
            const msg = binary
                ? { binary: true, data: Buffer.isBuffer(data) ? data : Buffer.from(data) }
                : { binary: false, data: String(data) };
            const w = this.waiters.shift();
            if (w) w(msg);
            else this.queue.push(msg);
        });
    }

    next(ms = OP_TIMEOUT) {
        if (this.queue.length) return Promise.resolve(this.queue.shift());
        return withTimeout(new Promise((res) => this.waiters.push(res)), ms, 'an echoed message');
    }

    async close() {
        if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
            this.ws.close(1000);
            try {
                await withTimeout(this.closed, 2_000, 'the socket to close');
            } catch {
                this.ws.terminate();
            }
        }
    }
}

describe('/echo raw connection', { timeout: SUITE_TIMEOUT }, () => {
    let ctx;
    const sockets = [];

    before(async () => {
        ctx = await startInterop();
    }, { timeout: 15_000 });

    after(async () => {
        await Promise.all(sockets.map((s) => s.close()));
        await ctx?.close();
    }, { timeout: 10_000 });

    /** Negotiates /echo; returns the WebSocket URL and the Cookie header built from the response's cookies. */
    async function negotiateEcho() {
        const res = await withTimeout(fetch(`${ctx.url}/echo/negotiate?negotiateVersion=1`, { method: 'POST' }),
            OP_TIMEOUT, 'POST /echo/negotiate');
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.ok(body.connectionToken, JSON.stringify(body));
        assert.ok(body.availableTransports.some((t) => t.transport === 'WebSockets'));
        const cookies = res.headers.getSetCookie()
            .filter((c) => !/^expiredCookie=/.test(c))
            .map((c) => c.split(';')[0]);
        assert.ok(cookies.includes('testCookie=testValue'), JSON.stringify(cookies));
        const wsUrl = `${ctx.url.replace(/^http/, 'ws')}/echo?id=${encodeURIComponent(body.connectionToken)}`;
        return { wsUrl, cookie: cookies.join('; ') };
    }

    function open(url, headers) {
        const s = new RawSocket(url, headers);
        sockets.push(s);
        return s;
    }

    it('echoes text as text and binary as binary when the cookie is present', async () => {
        const { wsUrl, cookie } = await negotiateEcho();
        const s = open(wsUrl, { Cookie: cookie });
        await withTimeout(s.opened, OP_TIMEOUT, 'the WebSocket to open');

        s.ws.send('hello');
        assert.deepEqual(await s.next(), { binary: false, data: 'hello' });

        const bytes = Buffer.from([0, 1, 2, 3, 0x1e, 0xff]);
        s.ws.send(bytes);
        const echoed = await s.next();
        assert.equal(echoed.binary, true);
        assert.deepEqual([...echoed.data], [...bytes]);

        const unicode = 'grüße 👋 {"type":1}\u001e';
        s.ws.send(unicode);
        assert.deepEqual(await s.next(), { binary: false, data: unicode });

        await s.close();
    });

    it('keeps the order of many messages and frame types', async () => {
        const { wsUrl, cookie } = await negotiateEcho();
        const s = open(wsUrl, { Cookie: cookie });
        await withTimeout(s.opened, OP_TIMEOUT, 'the WebSocket to open');
        const sent = [];
        for (let i = 0; i < 40; i++) {
            if (i % 3 === 0) {
                const b = Buffer.from([i, i + 1, i + 2]);
                s.ws.send(b);
                sent.push({ binary: true, data: [...b] });
            } else {
                s.ws.send(`message ${i}`);
                sent.push({ binary: false, data: `message ${i}` });
            }
        }
        const got = [];
        for (let i = 0; i < sent.length; i++) {
            const m = await s.next();
            got.push(m.binary ? { binary: true, data: [...m.data] } : m);
        }
        assert.deepEqual(got, sent);
        await s.close();
    });

    it('a bare testCookie=testValue is enough', async () => {
        const { wsUrl } = await negotiateEcho();
        const s = open(wsUrl, { Cookie: 'testCookie=testValue' });
        await withTimeout(s.opened, OP_TIMEOUT, 'the WebSocket to open');
        s.ws.send('ping');
        assert.deepEqual(await s.next(), { binary: false, data: 'ping' });
        await s.close();
    });

    it('without the cookie the connection is ended at once', async () => {
        const { wsUrl } = await negotiateEcho();
        const s = open(wsUrl, {});
        // The upgrade may be accepted and closed right away, or refused; either way it closes promptly.
        s.opened.then(() => { try { s.ws.send('should not echo'); } catch { /* closing */ } }, () => {});
        await withTimeout(s.closed, 3_000, 'the server to end a cookie-less /echo connection');
        assert.deepEqual(s.queue, [], 'nothing was echoed');
    });
});
