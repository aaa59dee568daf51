// TestHub (/testhub) through the official @microsoft/signalr client, per transport/protocol combination.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, invoke, nextCall, closed, withTimeout, OP_TIMEOUT } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

const COMPLEX_OBJECT = Object.freeze({
    String: 'hello world',
    IntArray: [1, 2, 3],
    ByteArray: 'AQID', // [1, 2, 3] as base64 (JSON protocol)
    Guid: '00010203-0405-0607-0706-050403020100',
    DateTime: '2000-01-01T00:00:00Z',
});

/** Compares a ComplexObject as received over JSON; DateTime by instant, not by string formatting. */
function assertComplexObjectEqual(actual, expected) {
    assert.equal(typeof actual, 'object');
    assert.notEqual(actual, null);
    assert.equal(actual.String, expected.String);
    assert.deepEqual(actual.IntArray, expected.IntArray);
    assert.equal(actual.ByteArray, expected.ByteArray);
    assert.equal(String(actual.Guid).toLowerCase(), expected.Guid.toLowerCase());
    assert.equal(typeof actual.DateTime, 'string');
    assert.match(actual.DateTime, /Z$|[+-]00:00$/, 'DateTime should be UTC');
    assert.equal(Date.parse(actual.DateTime), Date.parse(expected.DateTime), `DateTime ${actual.DateTime}`);
}

for (const combo of MATRIX) {
    describe(`TestHub over ${comboName(combo)}`, { timeout: SUITE_TIMEOUT }, () => {
        let ctx;
        let conn;

        before(async () => {
            ctx = await startInterop();
            conn = await ctx.connect('/testhub', combo);
        }, { timeout: 15_000 });

        after(async () => {
            await ctx?.close();
        }, { timeout: 10_000 });

        it('Echo returns its argument', async () => {
            assert.equal(await invoke(conn, 'Echo', 'hello'), 'hello');
            assert.equal(await invoke(conn, 'Echo', ''), '');
            const unicode = 'grüße 👋 \u0000 "quoted" \\ \u001e';
            assert.equal(await invoke(conn, 'Echo', unicode), unicode);
        });

        it('hub method names match case-insensitively', async () => {
            assert.equal(await invoke(conn, 'echo', 'x'), 'x');
            assert.equal(await invoke(conn, 'ECHO', 'y'), 'y');
        });

        it('GetCallerConnectionId equals the negotiated connectionId', async () => {
            assert.ok(conn.connectionId, 'client has a connectionId');
            assert.equal(await invoke(conn, 'GetCallerConnectionId'), conn.connectionId);
        });

        it('GetNumRedirects is 0 without the query parameter', async () => {
            assert.equal(await invoke(conn, 'GetNumRedirects'), 0);
        });

        it('GetNumRedirects reads numRedirects from the connection URL', async () => {
            const c = await ctx.connect('/testhub?numRedirects=7', combo);
            assert.equal(await invoke(c, 'GetNumRedirects'), 7);
            await c.stop();
        });

        it('ThrowException rejects with the detailed error', async () => {
            await assert.rejects(invoke(conn, 'ThrowException', 'boom'), {
                message: "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: boom",
            });
            // the connection stays usable
            assert.equal(await invoke(conn, 'Echo', 'after throw'), 'after throw');
        });

        it('InvokeWithString calls the client method Message', async () => {
            const call = nextCall(conn, 'Message');
            const result = await invoke(conn, 'InvokeWithString', 'message from server');
            assert.equal(result ?? null, null, 'InvokeWithString returns nothing');
            assert.deepEqual(await call, ['message from server']);
        });

        it('SendCustomObject calls the client method CustomObject with the same object', async () => {
            const obj = { Name: 'test name', Value: 42 };
            const call = nextCall(conn, 'CustomObject');
            await invoke(conn, 'SendCustomObject', obj);
            const [received] = await call;
            assert.deepEqual(received, obj);
        });

        it('GetActiveTransportName names the transport in use', async () => {
            assert.equal(await invoke(conn, 'GetActiveTransportName'), combo.transport);
        });

        it('EchoComplexObject round-trips a ComplexObject', { skip: combo.protocol !== 'json' && 'JSON payload shapes' }, async () => {
            const sent = {
                String: 'round trip',
                IntArray: [0, -1, 2147483647, -2147483648],
                ByteArray: 'AQID', // bytes 01 02 03
                Guid: '0f8fad5b-d9cb-469f-a165-70867728950e',
                DateTime: '2000-01-01T00:00:00Z',
            };
            assertComplexObjectEqual(await invoke(conn, 'EchoComplexObject', sent), sent);
        });

        it('SendComplexObject returns the fixed ComplexObject', { skip: combo.protocol !== 'json' && 'JSON payload shapes' }, async () => {
            assertComplexObjectEqual(await invoke(conn, 'SendComplexObject'), COMPLEX_OBJECT);
        });

        it('GetContentTypeHeader resolves (null or a string)', async () => {
            const ct = await invoke(conn, 'GetContentTypeHeader');
            // Over WebSockets the upgrade GET has no body, so null is expected (and accepted either way).
            assert.ok(ct === null || typeof ct === 'string', `unexpected ${JSON.stringify(ct)}`);
        });

        it('GetHeader returns request headers case-insensitively, null when absent', async () => {
            // In Node the client sends `User-Agent: Microsoft SignalR/10.0 (...; NodeJS; ...)` on every request,
            // the WebSocket upgrade included.
            const ua = await invoke(conn, 'GetHeader', 'User-Agent');
            assert.equal(typeof ua, 'string');
            assert.match(ua, /Microsoft SignalR\//);
            assert.equal(await invoke(conn, 'GetHeader', 'user-agent'), ua);
            assert.equal(await invoke(conn, 'GetHeader', 'x-nonexistent'), null);
        });

        it('GetCookie sees the cookies set by negotiate', async () => {
            // In Node the official client's FetchHttpClient wraps fetch with fetch-cookie and a tough-cookie
            // CookieJar; WebSocketTransport (and SSE) copy that jar's cookies for the transport URL into the
            // Cookie header. So cookies from the negotiate response reach the hub's HTTP request. The expired
            // cookie is dropped by the jar.
            assert.equal(await invoke(conn, 'GetCookie', 'testCookie'), 'testValue');
            assert.equal(await invoke(conn, 'GetCookie', 'testCookie2'), 'testValue2');
            assert.equal(await invoke(conn, 'GetCookie', 'expiredCookie'), null);
            assert.equal(await invoke(conn, 'GetCookie', 'noSuchCookie'), null);
        });

        it('invoking an unknown method fails with "Method does not exist."', async () => {
            await assert.rejects(invoke(conn, 'NoSuchMethod'), {
                message: "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
            });
        });

        it('a wrong argument count fails with InvalidDataException', async () => {
            await assert.rejects(invoke(conn, 'Echo'), (err) => {
                assert.ok(err.message.startsWith(
                    "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: " +
                    'Invocation provides 0 argument(s) but target expects 1.'), err.message);
                return true;
            });
            await assert.rejects(invoke(conn, 'Echo', 'a', 'b'), (err) => {
                assert.ok(err.message.startsWith(
                    "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: " +
                    'Invocation provides 2 argument(s) but target expects 1.'), err.message);
                return true;
            });
            assert.equal(await invoke(conn, 'Echo', 'still ok'), 'still ok');
        });

        it('an argument of the wrong type fails with "Error binding arguments."', async () => {
            await assert.rejects(invoke(conn, 'Echo', 42), (err) => {
                assert.ok(err.message.startsWith(
                    "Failed to invoke 'Echo' due to an error on the server. InvalidDataException: Error binding arguments."),
                err.message);
                return true;
            });
            await assert.rejects(invoke(conn, 'SendCustomObject', 'not an object'), (err) => {
                assert.ok(err.message.startsWith(
                    "Failed to invoke 'SendCustomObject' due to an error on the server. InvalidDataException: Error binding arguments."),
                err.message);
                return true;
            });
            assert.equal(await invoke(conn, 'Echo', 'still ok'), 'still ok');
        });

        it('send() of a throwing method reports nothing and keeps the connection usable', async () => {
            const c = await ctx.connect('/testhub', combo);
            let closeError = 'not closed';
            c.onclose((e) => { closeError = e; });
            await withTimeout(c.send('ThrowException', 'fire and forget'), OP_TIMEOUT, "send('ThrowException')");
            await withTimeout(c.send('NoSuchMethod'), OP_TIMEOUT, "send('NoSuchMethod')");
            assert.equal(await invoke(c, 'Echo', 'alive'), 'alive');
            assert.equal(closeError, 'not closed');
            assert.equal(c.state, 'Connected');
            assert.deepEqual(c.logger.errors(), []);
            await c.stop();
        });

        it('stop() closes cleanly (onclose without error)', async () => {
            const c = await ctx.connect('/testhub', combo);
            const whenClosed = closed(c);
            await withTimeout(c.stop(), OP_TIMEOUT, 'stop()');
            assert.equal(await withTimeout(whenClosed, OP_TIMEOUT, 'onclose'), undefined);
            assert.deepEqual(c.logger.errors(), []);
        });
    });
}
