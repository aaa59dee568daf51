// Connection-level behaviour through the official client: skipNegotiation, path casing, endpoints
// without WebSockets, a hub that cannot be created, negotiate redirects and negotiate failures.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, startConnection, invoke, closed, withTimeout, OP_TIMEOUT } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

describe('connections', { timeout: SUITE_TIMEOUT }, () => {
    let ctx;

    before(async () => {
        ctx = await startInterop();
    }, { timeout: 15_000 });

    after(async () => {
        await ctx?.close();
    }, { timeout: 10_000 });

    it('skipNegotiation: true connects straight over WebSockets', async () => {
        const c = await ctx.connect('/testhub', { transport: 'WebSockets', protocol: 'json', skipNegotiation: true });
        assert.equal(await invoke(c, 'Echo', 'no negotiate'), 'no negotiate');
        // Without negotiate the client never learns a connection id, but the server made one up.
        assert.equal(c.connectionId ?? null, null);
        const id = await invoke(c, 'GetCallerConnectionId');
        assert.equal(typeof id, 'string');
        assert.ok(id.length > 0);
        assert.equal(await invoke(c, 'GetActiveTransportName'), 'WebSockets');
        // no negotiate response, so no cookies in the client's jar
        assert.equal(await invoke(c, 'GetCookie', 'testCookie'), null);
        await c.stop();
    });

    it('skipNegotiation connections get distinct connection ids', async () => {
        const opts = { transport: 'WebSockets', protocol: 'json', skipNegotiation: true };
        const [a, b] = await Promise.all([ctx.connect('/testhub', opts), ctx.connect('/testhub', opts)]);
        const [ida, idb] = await Promise.all([invoke(a, 'GetCallerConnectionId'), invoke(b, 'GetCallerConnectionId')]);
        assert.notEqual(ida, idb);
        await Promise.all([a.stop(), b.stop()]);
    });

    for (const combo of MATRIX) {
        it(`paths match case-insensitively (/TESTHUB, ${comboName(combo)})`, async () => {
            const c = await ctx.connect('/TESTHUB', combo);
            assert.equal(await invoke(c, 'Echo', 'upper'), 'upper');
            assert.equal(await invoke(c, 'GetCallerConnectionId'), c.connectionId);
            await c.stop();
        });

        it(`many concurrent connections (${comboName(combo)})`, async () => {
            const conns = await Promise.all(Array.from({ length: 20 }, () => ctx.connect('/testhub', combo)));
            const ids = await Promise.all(conns.map((c) => invoke(c, 'GetCallerConnectionId')));
            assert.equal(new Set(ids).size, conns.length, 'connection ids are unique');
            assert.deepEqual(ids, conns.map((c) => c.connectionId));
            const echoes = await Promise.all(conns.map((c, i) => invoke(c, 'Echo', `conn ${i}`)));
            assert.deepEqual(echoes, conns.map((_, i) => `conn ${i}`));
            await Promise.all(conns.map((c) => c.stop()));
        });
    }

    it('/testhub-nowebsockets cannot be reached with the WebSockets transport forced', async () => {
        const c = ctx.build('/testhub-nowebsockets', { transport: 'WebSockets', protocol: 'json', quiet: true });
        await assert.rejects(withTimeout(c.start(), OP_TIMEOUT, 'start()'), (err) => {
            assert.match(err.message,
                /Unable to connect to the server with any of the available transports|None of the transports supported by the client are supported by the server/);
            return true;
        });
        assert.equal(c.state, 'Disconnected');
    });

    // Transport fallback with the client's default transport list (WebSockets, ServerSentEvents, LongPolling,
    // in that order): without WebSockets, JSON (Text) takes SSE, while MessagePack (Binary) must skip SSE
    // (offered for Text only) and land on long polling.
    for (const [protocol, expected] of [['json', 'ServerSentEvents'], ['messagepack', 'LongPolling']]) {
        it(`/testhub-nowebsockets with default transports: ${protocol} falls back to ${expected}`, async () => {
            const c = await ctx.connect('/testhub-nowebsockets', { transport: null, protocol });
            assert.equal(await invoke(c, 'GetActiveTransportName'), expected);
            assert.equal(await invoke(c, 'Echo', `fallback ${protocol}`), `fallback ${protocol}`);
            assert.equal(await invoke(c, 'GetCallerConnectionId'), c.connectionId);
            const whenClosed = closed(c);
            await withTimeout(c.stop(), OP_TIMEOUT, 'stop()');
            assert.equal(await withTimeout(whenClosed, OP_TIMEOUT, 'onclose'), undefined);
            assert.deepEqual(c.logger.errors(), []);
        });

        it(`/testhub with default transports: ${protocol} takes WebSockets`, async () => {
            const c = await ctx.connect('/testhub', { transport: null, protocol });
            assert.equal(await invoke(c, 'GetActiveTransportName'), 'WebSockets');
            assert.equal(await invoke(c, 'Echo', 'first choice'), 'first choice');
            await c.stop();
        });
    }

    it('/uncreatable: the connection closes with "Connection closed with an error."', async () => {
        const c = ctx.build('/uncreatable', { transport: 'WebSockets', protocol: 'json', quiet: true });
        const whenClosed = closed(c);
        let error;
        try {
            // The server sends its Close message right after the handshake; depending on timing the client
            // reports it as a start() failure or, once connected, through onclose.
            await withTimeout(c.start(), OP_TIMEOUT, 'start()');
            error = await withTimeout(whenClosed, OP_TIMEOUT, 'onclose');
        } catch (e) {
            error = e;
        }
        assert.ok(error instanceof Error, `expected an error, got ${error}`);
        assert.match(error.message, /Connection closed with an error\./);
        assert.equal(c.state, 'Disconnected');
    });

    it('a negotiate redirect (/redirect?baseUrl=...) leads to /testHub', async () => {
        const c = await ctx.connect(`/redirect?baseUrl=${ctx.url}`, { transport: 'WebSockets', protocol: 'json' });
        const n = await invoke(c, 'GetNumRedirects');
        assert.equal(typeof n, 'number');
        assert.ok(n >= 1, `numRedirects ${n}`);
        assert.equal(await invoke(c, 'Echo', 'redirected'), 'redirected');
        assert.equal(await invoke(c, 'GetCallerConnectionId'), c.connectionId);
        // a second redirect counts up
        const c2 = await ctx.connect(`/redirect?baseUrl=${encodeURIComponent(ctx.url)}`, { transport: 'WebSockets', protocol: 'json' });
        assert.ok(await invoke(c2, 'GetNumRedirects') > n);
        await Promise.all([c.stop(), c2.stop()]);
    });

    it('/bad-negotiate: start() fails with the server response text', async () => {
        const c = ctx.build('/bad-negotiate', { transport: 'WebSockets', protocol: 'json', quiet: true });
        await assert.rejects(withTimeout(c.start(), OP_TIMEOUT, 'start()'), (err) => {
            assert.match(err.message, /Some response from server/);
            assert.match(err.message, /400/);
            return true;
        });
    });

    it('a connection can be restarted after stop()', async () => {
        const c = await ctx.connect('/testhub', { transport: 'WebSockets', protocol: 'json' });
        const first = c.connectionId;
        await c.stop();
        await startConnection(c);
        assert.notEqual(c.connectionId, first);
        assert.equal(await invoke(c, 'GetCallerConnectionId'), c.connectionId);
        await c.stop();
    });
});
