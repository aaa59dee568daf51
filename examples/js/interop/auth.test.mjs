// Authentication through the official client: /authorizedhub (HubWithAuthorization, which requires an
// authenticated user) with bearer tokens from /generateJwtToken (HS256, nameid `testuser`, valid 5 s).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, invoke, withTimeout, delay, OP_TIMEOUT, WebSocket } from './server.mjs';

const SUITE_TIMEOUT = 60_000;
const NAME_IDENTIFIER = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier';
const UNAUTHORIZED = "Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'";
/** A token is issued for 5 s, in whole seconds of `exp`: 6 s after it was fetched it has surely expired. */
const TOKEN_EXPIRED_AFTER_MS = 6_200;

describe('/authorizedhub with bearer tokens', { timeout: SUITE_TIMEOUT }, () => {
    let ctx;
    /** Fetched first, used last, once it has expired. */
    let staleToken;
    let staleFetchedAt;

    async function fetchToken() {
        const response = await withTimeout(fetch(`${ctx.url}/generateJwtToken`), OP_TIMEOUT, 'GET /generateJwtToken');
        assert.equal(response.status, 200);
        assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
        const token = await response.text();
        assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
        return token;
    }

    function negotiate(headers = {}, query = '') {
        return withTimeout(
            fetch(`${ctx.url}/authorizedhub/negotiate?negotiateVersion=1${query}`, { method: 'POST', headers }),
            OP_TIMEOUT,
            'POST /authorizedhub/negotiate',
        );
    }

    async function assertStartRefused(connection) {
        await assert.rejects(withTimeout(connection.start(), OP_TIMEOUT, 'start()'), (err) => {
            assert.equal(err.message, UNAUTHORIZED);
            return true;
        });
        assert.equal(connection.state, 'Disconnected');
    }

    before(async () => {
        ctx = await startInterop();
        staleFetchedAt = Date.now();
        staleToken = await fetchToken();
        const fresh = await negotiate({ Authorization: `Bearer ${staleToken}` });
        assert.equal(fresh.status, 200, 'the token works while it is fresh');
    }, { timeout: 15_000 });

    after(async () => {
        await ctx?.close();
    }, { timeout: 10_000 });

    it('/generateJwtToken issues an HS256 token for testuser, valid 5 s', async () => {
        const token = await fetchToken();
        const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url')));
        assert.equal(header.alg, 'HS256');
        assert.equal(payload.nameid, 'testuser');
        assert.equal(payload.exp - payload.iat, 5);
        assert.ok(Math.abs(payload.exp - (Date.now() / 1000 + 5)) < 2, 'exp is about 5 s from now');
    });

    for (const combo of MATRIX) {
        it(`sync accessTokenFactory (${comboName(combo)})`, async () => {
            const token = await fetchToken();
            let calls = 0;
            const c = await ctx.connect('/authorizedhub', {
                ...combo,
                httpOptions: { accessTokenFactory: () => { calls += 1; return token; } },
            });
            assert.ok(calls >= 1, 'the factory was asked');
            assert.equal(await invoke(c, 'Echo', 'authorized'), 'authorized');
            assert.equal(await invoke(c, 'GetUserNameIdentifier'), 'testuser');
            assert.equal(await invoke(c, 'GetUserClaim', 'nameid'), 'testuser');
            assert.equal(await invoke(c, 'GetUserClaim', NAME_IDENTIFIER), 'testuser');
            assert.equal(await invoke(c, 'GetUserClaim', 'iss'), 'SignalRTestServer');
            assert.equal(await invoke(c, 'GetUserClaim', 'no-such-claim'), '');
            await c.stop();
        });

        it(`async accessTokenFactory fetching a fresh token each time (${comboName(combo)})`, async () => {
            let calls = 0;
            const c = await ctx.connect('/authorizedhub', {
                ...combo,
                httpOptions: {
                    accessTokenFactory: async () => {
                        calls += 1;
                        return fetchToken();
                    },
                },
            });
            assert.ok(calls >= 1, 'the factory was asked');
            assert.equal(await invoke(c, 'GetUserNameIdentifier'), 'testuser');
            assert.equal(await invoke(c, 'Echo', `async ${comboName(combo)}`), `async ${comboName(combo)}`);
            await c.stop();
        });
    }

    it('skipNegotiation over WebSockets carries the token in access_token', async () => {
        const token = await fetchToken();
        const c = await ctx.connect('/authorizedhub', {
            transport: 'WebSockets',
            protocol: 'json',
            skipNegotiation: true,
            httpOptions: { accessTokenFactory: () => token },
        });
        assert.equal(await invoke(c, 'GetUserNameIdentifier'), 'testuser');
        await c.stop();
    });

    for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling']) {
        it(`without a token, start fails at negotiate with 401 (${transport})`, async () => {
            await assertStartRefused(ctx.build('/authorizedhub', { transport, protocol: 'json', quiet: true }));
        });
    }

    it('a token the factory does not give (undefined) is no token', async () => {
        const c = ctx.build('/authorizedhub', {
            transport: 'WebSockets',
            protocol: 'json',
            quiet: true,
            httpOptions: { accessTokenFactory: () => undefined },
        });
        await assertStartRefused(c);
    });

    it('a tampered token is refused', async () => {
        const token = await fetchToken();
        const [header, , signature] = token.split('.');
        const payload = Buffer.from(JSON.stringify({ nameid: 'admin', exp: Math.floor(Date.now() / 1000) + 60 }))
            .toString('base64url');
        const c = ctx.build('/authorizedhub', {
            transport: 'LongPolling',
            protocol: 'json',
            quiet: true,
            httpOptions: { accessTokenFactory: () => `${header}.${payload}.${signature}` },
        });
        await assertStartRefused(c);
    });

    it('a refused negotiate is 401 Unauthorized with an empty body', async () => {
        for (const headers of [{}, { Authorization: 'Bearer not-a-token' }, { Authorization: 'Basic dXNlcjpwYXNz' }]) {
            const response = await negotiate(headers);
            assert.equal(response.status, 401, JSON.stringify(headers));
            assert.equal(response.statusText, 'Unauthorized');
            assert.equal(await response.text(), '');
        }
        const ok = await negotiate({ Authorization: `Bearer ${await fetchToken()}` });
        assert.equal(ok.status, 200);
        assert.ok((await ok.json()).connectionToken);
    });

    it('every transport request needs the token, not only negotiate', async () => {
        const token = await fetchToken();
        const negotiated = await negotiate({}, `&access_token=${token}`);
        assert.equal(negotiated.status, 200);
        const { connectionToken } = await negotiated.json();
        // A poll, an SSE stream and a WebSocket on that connection, each without the token.
        const poll = await fetch(`${ctx.url}/authorizedhub?id=${connectionToken}`);
        assert.equal(poll.status, 401);
        const sse = await fetch(`${ctx.url}/authorizedhub?id=${connectionToken}`, { headers: { Accept: 'text/event-stream' } });
        assert.equal(sse.status, 401);
        const status = await new Promise((resolve, reject) => {
            const ws = new WebSocket(`${ctx.url.replace(/^http/, 'ws')}/authorizedhub?id=${connectionToken}`);
            ws.on('unexpected-response', (_, res) => { resolve(res.statusCode); ws.terminate(); });
            ws.on('open', () => { ws.close(); reject(new Error('the WebSocket opened without a token')); });
            ws.on('error', () => {});
        });
        assert.equal(status, 401);
    });

    // Last: by now the token fetched in `before` is close to its expiry.
    it('an expired token is refused', async () => {
        const wait = staleFetchedAt + TOKEN_EXPIRED_AFTER_MS - Date.now();
        if (wait > 0) await delay(wait);
        const response = await negotiate({ Authorization: `Bearer ${staleToken}` });
        assert.equal(response.status, 401);
        assert.equal(await response.text(), '');
        for (const transport of ['WebSockets', 'LongPolling']) {
            const c = ctx.build('/authorizedhub', {
                transport,
                protocol: 'json',
                quiet: true,
                httpOptions: { accessTokenFactory: () => staleToken },
            });
            await assertStartRefused(c);
        }
    });
});
