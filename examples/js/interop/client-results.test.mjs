// Client results through the official client, per MATRIX pair: the server invokes a client method and waits for
// its value, either from outside any hub call (GET /clientresult/{connectionId} → client method `Result`, answered as
// text) or from inside a hub method of the same caller (BroadcastHub AskCaller → client method `Answer`).
//
// One server serves the whole file; the pairs run concurrently, the tests of a pair in order, each test with its own
// connection (so no handler of one test can answer another's call).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, stopConnection, invoke, withTimeout, delay, OP_TIMEOUT } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

let ctx;

before(async () => {
    ctx = await startInterop();
}, { timeout: 15_000 });

after(async () => {
    await ctx?.close();
}, { timeout: 10_000 });

/** GET /clientresult/{connectionId}; resolves with { status, text }. */
async function clientResult(connectionId) {
    const res = await withTimeout(
        fetch(`${ctx.url}/clientresult/${encodeURIComponent(connectionId)}`, { signal: AbortSignal.timeout(OP_TIMEOUT) }),
        OP_TIMEOUT, `GET /clientresult/${connectionId}`);
    return { status: res.status, text: await withTimeout(res.text(), OP_TIMEOUT, 'the /clientresult body') };
}

/** Runs `body(conn)` with a fresh connection to `path` whose handlers `setup(conn)` registered before start. */
async function withConnection(path, combo, setup, body, { quiet = false } = {}) {
    const conn = ctx.build(path, { ...combo, quiet });
    setup(conn);
    try {
        await withTimeout(conn.start(), OP_TIMEOUT, 'HubConnection.start()');
        await body(conn);
    } finally {
        await stopConnection(conn);
    }
}

it('/clientresult for an unknown connection id answers at once', async () => {
    assert.deepEqual(await clientResult('no-such-connection'),
        { status: 200, text: "Connection 'no-such-connection' does not exist." });
});

describe('client results', { concurrency: true }, () => {
    for (const combo of MATRIX) {
        describe(`client results over ${comboName(combo)}`, { timeout: SUITE_TIMEOUT, concurrency: 1 }, () => {
            it('/clientresult: a handler returning 10 → "10"', async () => {
                let calls = 0;
                await withConnection('/testhub', combo, (c) => {
                    c.on('Result', (...args) => {
                        calls++;
                        assert.deepEqual(args, []);
                        return 10;
                    });
                }, async (c) => {
                    assert.deepEqual(await clientResult(c.connectionId), { status: 200, text: '10' });
                    assert.equal(calls, 1);
                    // twice, and the connection still works for hub calls in between
                    assert.equal(await invoke(c, 'Echo', 'between'), 'between');
                    assert.equal((await clientResult(c.connectionId)).text, '10');
                    assert.equal(calls, 2);
                    assert.deepEqual(c.logger.errors(), []);
                });
            });

            it('/clientresult: an async handler (a promise of 10) → "10"', async () => {
                await withConnection('/testhub', combo, (c) => {
                    c.on('Result', async () => {
                        await delay(50);
                        return 10;
                    });
                }, async (c) => {
                    assert.equal((await clientResult(c.connectionId)).text, '10');
                });
            });

            it('/clientresult: a handler throwing Error("from callback") → "Error: from callback"', async () => {
                await withConnection('/testhub', combo, (c) => {
                    c.on('Result', () => { throw new Error('from callback'); });
                }, async (c) => {
                    assert.equal((await clientResult(c.connectionId)).text, 'Error: from callback');
                    assert.equal(await invoke(c, 'Echo', 'after error'), 'after error');
                }, { quiet: true });
            });

            it('/clientresult: no handler → "Client didn\'t provide a result."', async () => {
                await withConnection('/testhub', combo, () => {}, async (c) => {
                    assert.equal((await clientResult(c.connectionId)).text, "Client didn't provide a result.");
                    assert.equal(await invoke(c, 'Echo', 'after no result'), 'after no result');
                }, { quiet: true });
            });

            it('/clientresult: several connections at once each answer their own call', async () => {
                const conns = [];
                try {
                    for (let i = 0; i < 3; i++) {
                        const c = ctx.build('/testhub', combo);
                        const value = 100 + i;
                        c.on('Result', () => value);
                        conns.push(c);
                    }
                    await Promise.all(conns.map((c) => withTimeout(c.start(), OP_TIMEOUT, 'HubConnection.start()')));
                    const texts = await Promise.all(conns.map(async (c) => (await clientResult(c.connectionId)).text));
                    assert.deepEqual(texts, ['100', '101', '102']);
                } finally {
                    await Promise.all(conns.map(stopConnection));
                }
            });

            it('/clientresult: a call still pending when the client disconnects is answered (no hang)', async () => {
                const conn = ctx.build('/testhub', combo);
                let called;
                const calledP = new Promise((res) => { called = res; });
                conn.on('Result', () => {
                    called();
                    return new Promise(() => {}); // never answers
                });
                try {
                    await withTimeout(conn.start(), OP_TIMEOUT, 'HubConnection.start()');
                    const pending = clientResult(conn.connectionId);
                    pending.catch(() => {});
                    await withTimeout(calledP, OP_TIMEOUT, "the client method 'Result' to be called");
                    await stopConnection(conn);
                    const { text } = await pending;
                    assert.notEqual(text, '10');
                    assert.ok(text.length > 0, 'an error text');
                } finally {
                    await stopConnection(conn);
                }
            });

            it('AskCaller: a client result awaited inside the caller\'s own hub method', async () => {
                const asked = [];
                await withConnection('/broadcast?user=asker', combo, (c) => {
                    c.on('Answer', (q) => {
                        asked.push(q);
                        return 'yes: ' + q;
                    });
                }, async (c) => {
                    assert.equal(await invoke(c, 'AskCaller', 'q?'), 'yes: q?');
                    assert.deepEqual(asked, ['q?']);
                    // again (in sequence: with MaximumParallelInvocationsPerClient = 1, a second invocation sent while
                    // the first awaits the client would hold up the first's result), then a plain call
                    assert.equal(await invoke(c, 'AskCaller', 'grüße 👋'), 'yes: grüße 👋');
                    assert.equal(await invoke(c, 'Echo', 'after ask'), 'after ask');
                    assert.deepEqual(asked, ['q?', 'grüße 👋']);
                    assert.deepEqual(c.logger.errors(), []);
                });
            });

            it('AskCaller: an async Answer handler', async () => {
                await withConnection('/broadcast?user=asker', combo, (c) => {
                    c.on('Answer', async (q) => {
                        await delay(50);
                        return `later: ${q}`;
                    });
                }, async (c) => {
                    assert.equal(await invoke(c, 'AskCaller', 'q?'), 'later: q?');
                });
            });

            it('AskCaller: the client\'s error fails the hub method, and the connection stays usable', async () => {
                await withConnection('/broadcast?user=asker', combo, (c) => {
                    c.on('Answer', () => { throw new Error('no answer'); });
                }, async (c) => {
                    await assert.rejects(invoke(c, 'AskCaller', 'q?'), (err) => {
                        assert.match(err.message, /^An unexpected error occurred invoking 'AskCaller' on the server\./);
                        assert.match(err.message, /Error: no answer/);
                        return true;
                    });
                    assert.equal(await invoke(c, 'Echo', 'after failed ask'), 'after failed ask');
                }, { quiet: true });
            });
        });
    }
});
