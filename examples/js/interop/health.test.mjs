// GET /health counts what the server holds: open connections, groups with members and users with
// connections (summed over hubs), so leak tests such as the soak test can wait for all three to
// return to 0. One server of its own, so the counts are exact. (A long-polling connection stopped
// by its client stays counted until the disconnect timeout, 15 s: issue 12, defect 6.)

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startInterop, stopConnection, invoke, withTimeout, waitUntil, delay, OP_TIMEOUT } from './server.mjs';

let ctx;

before(async () => {
    ctx = await startInterop();
}, { timeout: 15_000 });

after(async () => {
    await ctx?.close();
}, { timeout: 10_000 });

async function health() {
    const res = await withTimeout(fetch(`${ctx.url}/health`), OP_TIMEOUT, 'GET /health');
    assert.equal(res.status, 200);
    return res.json();
}

/** Polls /health until `predicate` holds for its answer; returns that answer. */
async function healthUntil(predicate, what) {
    let last = null;
    let ready = false;
    const poll = (async () => {
        for (;;) {
            last = await health();
            if (predicate(last)) {
                ready = true;
                return;
            }
            await delay(50);
        }
    })();
    poll.catch(() => {});
    await waitUntil(() => ready, 40_000, `${what} (last: ${JSON.stringify(last)})`);
    return last;
}

it('/health counts connections, groups with members and users with connections', async () => {
    assert.deepEqual(await health(), { status: 'ok', connections: 0, groups: 0, users: 0 });

    const alice1 = await ctx.connect('/broadcast?user=alice', { transport: 'WebSockets' });
    const alice2 = await ctx.connect('/broadcast?user=alice', { transport: 'LongPolling' });
    const bob = await ctx.connect('/broadcast?user=bob', { transport: 'ServerSentEvents' });
    const anonymous = await ctx.connect('/testhub', { transport: 'WebSockets' });
    await invoke(alice1, 'JoinGroup', 'g1');
    await invoke(alice2, 'JoinGroup', 'g1');
    await invoke(bob, 'JoinGroup', 'g2');
    assert.deepEqual(await health(), { status: 'ok', connections: 4, groups: 2, users: 2 });

    await invoke(bob, 'LeaveGroup', 'g2');
    assert.deepEqual(await health(), { status: 'ok', connections: 4, groups: 1, users: 2 });

    await stopConnection(alice1);
    await healthUntil((h) => h.connections === 3, 'alice1 to be counted out');
    assert.deepEqual(await health(), { status: 'ok', connections: 3, groups: 1, users: 2 }, 'g1 and alice keep alice2');

    await stopConnection(alice2);
    await stopConnection(bob);
    await stopConnection(anonymous);
    const empty = await healthUntil((h) => h.connections === 0, 'every connection to be counted out');
    assert.deepEqual(empty, { status: 'ok', connections: 0, groups: 0, users: 0 });
});
