// HTTP-level behaviour of the interop server, checked with Node's fetch: negotiate bodies and cookies,
// CORS, transport request errors, and the redirect / bad-negotiate helper endpoints.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startInterop, withTimeout, OP_TIMEOUT } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

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

    before(async () => {
        ctx = await startInterop();
        base = ctx.url;
    }, { timeout: 15_000 });

    after(async () => {
        await ctx?.close();
    }, { timeout: 10_000 });

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
