// BroadcastHub presence (/broadcast?user=NAME) with the official client, one server (in memory):
// Members, and the Joined/Left client methods, exactly once, for every transport/protocol pair.
//
// Barrier: Joined and Left are sent to the group before the invocation that caused them completes
// on this one server, and an Echo round trip on a receiver afterwards brings everything queued
// for it (messages on one connection keep their order).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, startConnection, stopConnection, invoke, delay, waitUntil } from './server.mjs';

/** Long polls answer every second, so a test can outlast a few of them. */
const POLL_SECONDS = 1;

let ctx;

before(async () => {
    ctx = await startInterop(['--long-poll-timeout', String(POLL_SECONDS)]);
}, { timeout: 15_000 });

after(async () => {
    await ctx?.close();
}, { timeout: 10_000 });

for (const combo of MATRIX) {
    describe(`presence over ${comboName(combo)}`, { timeout: 30_000 }, () => {
        const group = `room ${comboName(combo)}`;

        /** A started connection as `user` (anonymous without one) that records its events. */
        async function person(user) {
            const path = user === undefined ? '/broadcast' : `/broadcast?user=${encodeURIComponent(user)}`;
            const c = ctx.build(path, combo);
            c.events = [];
            c.on('Joined', (g, u) => { c.events.push(['Joined', g, u]); });
            c.on('Left', (g, u) => { c.events.push(['Left', g, u]); });
            await startConnection(c);
            return c;
        }

        const count = (c, kind, user) =>
            c.events.filter(([k, g, u]) => k === kind && g === group && u === user).length;

        it('the newcomer gets its Joined before JoinGroup completes; the user is the connection id without one', async () => {
            const anon = await person();
            await invoke(anon, 'JoinGroup', group);
            assert.deepEqual(anon.events, [['Joined', group, anon.connectionId]]);
            assert.deepEqual(await invoke(anon, 'Members', group), [anon.connectionId]);
            await invoke(anon, 'LeaveGroup', group);
            assert.deepEqual(await invoke(anon, 'Members', group), []);
            await stopConnection(anon);
        });

        it('a user with two connections joins once and leaves once; Members are sorted by byte order', async () => {
            const watcher = await person('bob');
            await invoke(watcher, 'JoinGroup', group);
            const zed = await person('Zed');
            await invoke(zed, 'JoinGroup', group);
            const ann1 = await person('ann');
            const ann2 = await person('ann');
            await invoke(ann1, 'JoinGroup', group);
            await invoke(ann2, 'JoinGroup', group);
            await invoke(watcher, 'Echo', 'sync');
            assert.equal(count(watcher, 'Joined', 'ann'), 1, JSON.stringify(watcher.events));
            assert.equal(count(ann2, 'Joined', 'ann'), 0, 'the second connection is no news');
            assert.deepEqual(await invoke(watcher, 'Members', group), ['Zed', 'ann', 'bob']);

            await invoke(ann1, 'LeaveGroup', group);
            await invoke(watcher, 'Echo', 'sync');
            assert.equal(count(watcher, 'Left', 'ann'), 0, 'ann is still in through her second connection');

            // Her last connection ends: that is her leave.
            await stopConnection(ann2);
            await waitUntil(() => count(watcher, 'Left', 'ann'), 5_000, 'Left for ann');
            await delay(200);
            assert.equal(count(watcher, 'Left', 'ann'), 1, JSON.stringify(watcher.events));
            assert.deepEqual(await invoke(watcher, 'Members', group), ['Zed', 'bob']);
            await invoke(zed, 'LeaveGroup', group);
            await invoke(watcher, 'Echo', 'sync');
            assert.equal(count(watcher, 'Left', 'Zed'), 1);
            assert.equal(count(zed, 'Left', 'Zed'), 0, 'who leaves is no longer a member');
            await Promise.all([ann1, zed, watcher].map(stopConnection));
        });

        it('a member stays while its transport comes and goes (long polls), and leaves once when it ends', async () => {
            const watcher = await person('watcher');
            await invoke(watcher, 'JoinGroup', group);
            const dora = await person('dora');
            await invoke(dora, 'JoinGroup', group);
            // Several long polls end and start again meanwhile (with long polling).
            await delay(POLL_SECONDS * 2500);
            await invoke(watcher, 'Echo', 'sync');
            assert.equal(count(watcher, 'Left', 'dora'), 0, JSON.stringify(watcher.events));
            assert.deepEqual(await invoke(watcher, 'Members', group), ['dora', 'watcher']);
            await stopConnection(dora);
            await waitUntil(() => count(watcher, 'Left', 'dora'), 5_000, 'Left for dora');
            await delay(200);
            assert.equal(count(watcher, 'Left', 'dora'), 1);
            assert.equal(count(watcher, 'Joined', 'dora'), 1);
            await stopConnection(watcher);
        });
    });
}
