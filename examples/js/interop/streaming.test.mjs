// TestHub streaming through the official client, per MATRIX pair: server-to-client streams (Stream, EmptyStream,
// StreamThrowException, InfiniteStream and its cancellation), the streaming / non-streaming mismatch errors, and
// client-to-server upload streams (StreamingConcat) including an upload that fails and one far larger than the
// server's per-stream buffer of 10 items.
//
// One server serves the whole file; every suite uses its own connection, and the suites run concurrently.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, stopConnection, invoke, nextCall, withTimeout, delay, signalR, OP_TIMEOUT } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

let ctx;

before(async () => {
    ctx = await startInterop();
}, { timeout: 15_000 });

after(async () => {
    await ctx?.close();
}, { timeout: 10_000 });

/**
 * Subscribes to `conn.stream(method, ...args)` and resolves with every item once the stream completes, or rejects
 * with the stream's error. Bounded: on timeout the subscription is disposed and the promise rejects.
 */
function collect(conn, method, ...args) {
    const items = [];
    let subscription;
    const done = new Promise((resolve, reject) => {
        subscription = conn.stream(method, ...args).subscribe({
            next: (item) => { items.push(item); },
            complete: () => resolve(items),
            error: (err) => reject(err),
        });
    });
    return withTimeout(done, OP_TIMEOUT, `stream('${method}') to end`).catch((err) => {
        if (/^Timed out/.test(err?.message)) subscription.dispose();
        throw err;
    });
}

/**
 * Bound for the tests of invocations running alongside uploads: answers on a local server take milliseconds, and a
 * server that serializes them behind the upload never answers at all.
 */
const ALONGSIDE_TIMEOUT = 3_000;

/** Invokes StreamingConcat with a fresh Subject; returns { subject, result } (result bounded by `ms`). */
function startConcat(conn, ms = OP_TIMEOUT) {
    const subject = new signalR.Subject();
    const result = withTimeout(conn.invoke('StreamingConcat', subject), ms, "invoke('StreamingConcat')");
    // Keep an early rejection from being reported as unhandled before the test awaits it.
    result.catch(() => {});
    return { subject, result };
}

// The pairs run concurrently (each has its own connections); the tests within a pair run in order (concurrency is
// inherited by nested suites, hence the explicit `concurrency: 1`).
describe('TestHub streaming', { concurrency: true }, () => {
    for (const combo of MATRIX) {
        describe(`TestHub streaming over ${comboName(combo)}`, { timeout: SUITE_TIMEOUT, concurrency: 1 }, () => {
            let conn;

            before(async () => {
                conn = await ctx.connect('/testhub', combo);
            }, { timeout: 10_000 });

            it('Stream yields a, b, c and completes', async () => {
                assert.deepEqual(await collect(conn, 'Stream'), ['a', 'b', 'c']);
                // twice in a row on the same connection, and with different casing
                assert.deepEqual(await collect(conn, 'stream'), ['a', 'b', 'c']);
            });

            it('two streams at once keep their items apart', async () => {
                const [x, y] = await Promise.all([collect(conn, 'Stream'), collect(conn, 'Stream')]);
                assert.deepEqual(x, ['a', 'b', 'c']);
                assert.deepEqual(y, ['a', 'b', 'c']);
            });

            it('EmptyStream completes without items', async () => {
                assert.deepEqual(await collect(conn, 'EmptyStream'), []);
            });

            it('StreamThrowException fails the stream with the detailed error', async () => {
                await assert.rejects(collect(conn, 'StreamThrowException', 'stream boom'), {
                    message: "An unexpected error occurred invoking 'StreamThrowException' on the server. " +
                        'InvalidOperationException: stream boom',
                });
                assert.equal(await invoke(conn, 'Echo', 'after stream error'), 'after stream error');
            });

            it('InfiniteStream: disposing the subscription cancels it and the server calls StreamCanceled', async () => {
                const canceled = nextCall(conn, 'StreamCanceled');
                const items = [];
                let ended = null;
                const subscription = conn.stream('InfiniteStream').subscribe({
                    next: (item) => { items.push(item); },
                    complete: () => { ended = 'complete'; },
                    error: (err) => { ended = err; },
                });
                // An active stream does not hold up other invocations of the same connection.
                assert.equal(await invoke(conn, 'Echo', 'while streaming'), 'while streaming');
                subscription.dispose();
                assert.deepEqual(await canceled, []);
                assert.deepEqual(items, []);
                assert.equal(ended, null, 'a disposed subscription gets no further callbacks');
                assert.equal(await invoke(conn, 'Echo', 'after cancel'), 'after cancel');
            });

            it('InfiniteStream: a cancel sent right behind the stream invocation still cancels it', async () => {
                const canceled = nextCall(conn, 'StreamCanceled');
                conn.stream('InfiniteStream').subscribe({ next: () => {}, complete: () => {}, error: () => {} }).dispose();
                assert.deepEqual(await canceled, []);
                assert.equal(await invoke(conn, 'Echo', 'after quick cancel'), 'after quick cancel');
            });

            it('invoking a streaming method without streaming fails', async () => {
                await assert.rejects(invoke(conn, 'Stream'), {
                    message: "The client attempted to invoke the streaming 'Stream' method with a non-streaming invocation.",
                });
                assert.equal(await invoke(conn, 'Echo', 'after mismatch'), 'after mismatch');
            });

            it('streaming a non-streaming method fails', async () => {
                await assert.rejects(collect(conn, 'Echo', 'x'), {
                    message: "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.",
                });
                assert.equal(await invoke(conn, 'Echo', 'after mismatch'), 'after mismatch');
            });

            it('StreamingConcat concatenates an upload stream', async () => {
                const { subject, result } = startConcat(conn);
                subject.next('a');
                subject.next('b');
                subject.next('c');
                subject.complete();
                assert.equal(await result, 'abc');
            });

            it('StreamingConcat of an empty upload is the empty string', async () => {
                const { subject, result } = startConcat(conn);
                subject.complete();
                assert.equal(await result, '');
            });

            // An invocation with upload streams does not count against MaximumParallelInvocationsPerClient (1) in ASP.NET
            // Core (DefaultHubDispatcher only runs invocations that neither upload nor stream results under that limit), so
            // other invocations run while an upload is in progress. Own connection: a server that gets this wrong leaves
            // the connection stuck.
            it('StreamingConcat: other invocations are answered while an upload is in progress', async () => {
                const c = await ctx.connect('/testhub', combo);
                try {
                    const { subject, result } = startConcat(c);
                    const echo = (m) => withTimeout(c.invoke('Echo', m), ALONGSIDE_TIMEOUT, `invoke('Echo', '${m}') during the upload`);
                    subject.next('x');
                    assert.equal(await echo('mid-upload'), 'mid-upload');
                    await delay(20);
                    subject.next('y');
                    assert.equal(await echo('mid-upload 2'), 'mid-upload 2');
                    subject.next('z');
                    subject.complete();
                    assert.equal(await result, 'xyz');
                } finally {
                    await stopConnection(c);
                }
            });

            it('StreamingConcat fails with HubException when the upload ends with an error', async () => {
                const { subject, result } = startConcat(conn);
                subject.next('a');
                subject.error(new Error('upload failed'));
                await assert.rejects(result, {
                    message: "An unexpected error occurred invoking 'StreamingConcat' on the server. HubException: upload failed",
                });
                assert.equal(await invoke(conn, 'Echo', 'after upload error'), 'after upload error');
            });

            it('StreamingConcat of 200 items arrives complete and in order (more than the 10-item buffer)', async () => {
                const items = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(3, '0')};`);
                const { subject, result } = startConcat(conn, 15_000);
                for (const item of items) subject.next(item);
                subject.complete();
                assert.equal(await result, items.join(''));
            });

            // Both uploads must run at once: with the second one queued behind the first, its items fill the 10-item buffer
            // and the server stops reading the connection, so the first upload never sees its end. Own connection.
            it('two uploads at once, 40 interleaved items each, run concurrently and are kept apart', async () => {
                const c = await ctx.connect('/testhub', combo);
                try {
                    const one = startConcat(c, ALONGSIDE_TIMEOUT);
                    const two = startConcat(c, ALONGSIDE_TIMEOUT);
                    const expected = ['', ''];
                    for (let i = 0; i < 40; i++) {
                        one.subject.next(`a${i},`);
                        expected[0] += `a${i},`;
                        two.subject.next(`b${i},`);
                        expected[1] += `b${i},`;
                    }
                    two.subject.complete();
                    one.subject.complete();
                    assert.deepEqual(await Promise.all([one.result, two.result]), expected);
                } finally {
                    await stopConnection(c);
                }
            });

            it('the connection is still healthy', async () => {
                assert.equal(await invoke(conn, 'Echo', 'done'), 'done');
                assert.deepEqual(conn.logger.errors(), []);
            });
        });
    }
});
