// BroadcastHub (/broadcast?user=NAME): every send target, checked for exactly who received a message.
//
// Barrier: when a sender's invoke resolves, the server has already queued the Receive messages on the
// targets' connections; an Echo round trip on every receiver afterwards therefore guarantees that
// anything sent to it has been delivered (messages on one connection keep their order).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, startConnection, invoke, waitUntil } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

/** The four test connections: name → user. */
const PEOPLE = { a: 'alice', b: 'alice', c: 'bob', d: 'carol' };

for (const combo of MATRIX) {
    describe(`BroadcastHub over ${comboName(combo)}`, { timeout: SUITE_TIMEOUT }, () => {
        let ctx;
        /** name → HubConnection */
        const conns = {};
        /** name → received messages, in order */
        const inbox = {};
        let counter = 0;

        before(async () => {
            ctx = await startInterop();
            await Promise.all(Object.entries(PEOPLE).map(async ([name, user]) => {
                const c = ctx.build(`/broadcast?user=${user}`, combo);
                inbox[name] = [];
                c.on('Receive', (msg) => { inbox[name].push(msg); });
                await startConnection(c);
                conns[name] = c;
            }));
        }, { timeout: 15_000 });

        after(async () => {
            await ctx?.close();
        }, { timeout: 10_000 });

        const id = (name) => conns[name].connectionId;

        /** A message text unique to this call. */
        const fresh = (label) => `${label} #${++counter}`;

        /** Every connection does an Echo round trip, so everything queued for it has arrived. */
        async function sync() {
            await Promise.all(Object.values(conns).map((c) => invoke(c, 'Echo', 'sync')));
        }

        /**
         * `sender` invokes `method(...args, message)`; returns { name: number of copies received } after the
         * barrier.
         */
        async function deliver(sender, method, ...args) {
            const message = fresh(method);
            await invoke(conns[sender], method, ...args, message);
            await sync();
            const counts = {};
            for (const name of Object.keys(PEOPLE)) counts[name] = inbox[name].filter((m) => m === message).length;
            return counts;
        }

        /** Asserts that exactly `expected` (names) received one copy each and everyone else none. */
        function assertReceivers(counts, expected) {
            const want = {};
            for (const name of Object.keys(PEOPLE)) want[name] = expected.includes(name) ? 1 : 0;
            assert.deepEqual(counts, want);
        }

        async function join(group, ...names) {
            await Promise.all(names.map((n) => invoke(conns[n], 'JoinGroup', group)));
        }

        async function leave(group, ...names) {
            await Promise.all(names.map((n) => invoke(conns[n], 'LeaveGroup', group)));
        }

        it('Echo and GetConnectionId', async () => {
            for (const name of Object.keys(PEOPLE)) {
                assert.equal(await invoke(conns[name], 'Echo', name), name);
                assert.ok(conns[name].connectionId);
                assert.equal(await invoke(conns[name], 'GetConnectionId'), id(name));
            }
            assert.equal(new Set(Object.keys(PEOPLE).map(id)).size, 4);
        });

        it('SendToAll reaches everyone, the caller included', async () => {
            assertReceivers(await deliver('a', 'SendToAll'), ['a', 'b', 'c', 'd']);
        });

        it('SendToOthers reaches everyone but the caller', async () => {
            assertReceivers(await deliver('a', 'SendToOthers'), ['b', 'c', 'd']);
            assertReceivers(await deliver('d', 'SendToOthers'), ['a', 'b', 'c']);
        });

        it('SendToAllExcept skips the excluded connections', async () => {
            assertReceivers(await deliver('a', 'SendToAllExcept', [id('b'), id('c')]), ['a', 'd']);
            assertReceivers(await deliver('a', 'SendToAllExcept', []), ['a', 'b', 'c', 'd']);
            assertReceivers(await deliver('a', 'SendToAllExcept', ['no-such-connection']), ['a', 'b', 'c', 'd']);
        });

        it('SendToConnection reaches that connection only', async () => {
            assertReceivers(await deliver('a', 'SendToConnection', id('c')), ['c']);
            assertReceivers(await deliver('a', 'SendToConnection', id('a')), ['a']);
            assertReceivers(await deliver('a', 'SendToConnection', 'no-such-connection'), []);
        });

        it('SendToConnections reaches exactly those connections', async () => {
            assertReceivers(await deliver('a', 'SendToConnections', [id('b'), id('d')]), ['b', 'd']);
            assertReceivers(await deliver('c', 'SendToConnections', []), []);
        });

        it('JoinGroup / SendToGroup / LeaveGroup', async () => {
            const g = 'group-basic';
            await join(g, 'a', 'c');
            assertReceivers(await deliver('d', 'SendToGroup', g), ['a', 'c']);
            assertReceivers(await deliver('a', 'SendToGroup', g), ['a', 'c']);
            await leave(g, 'c');
            assertReceivers(await deliver('d', 'SendToGroup', g), ['a']);
            await leave(g, 'a');
            assertReceivers(await deliver('d', 'SendToGroup', g), []);
        });

        it('joining a group twice still delivers once; group names are case-sensitive', async () => {
            const g = 'group-twice';
            await join(g, 'b');
            await join(g, 'b');
            assertReceivers(await deliver('a', 'SendToGroup', g), ['b']);
            assertReceivers(await deliver('a', 'SendToGroup', g.toUpperCase()), []);
            await leave(g, 'b');
            assertReceivers(await deliver('a', 'SendToGroup', g), []);
        });

        it('SendToGroup on an empty group reaches nobody', async () => {
            assertReceivers(await deliver('a', 'SendToGroup', 'group-nobody'), []);
        });

        it('SendToGroups reaches members of any group, each once', async () => {
            const [g1, g2] = ['groups-1', 'groups-2'];
            await join(g1, 'a', 'b');
            await join(g2, 'a', 'c');
            assertReceivers(await deliver('d', 'SendToGroups', [g1, g2]), ['a', 'b', 'c']);
            assertReceivers(await deliver('d', 'SendToGroups', [g2]), ['a', 'c']);
            assertReceivers(await deliver('d', 'SendToGroups', []), []);
            await leave(g1, 'a', 'b');
            await leave(g2, 'a', 'c');
        });

        it('SendToGroupExcept skips the excluded members', async () => {
            const g = 'group-except';
            await join(g, 'a', 'b', 'c');
            assertReceivers(await deliver('d', 'SendToGroupExcept', g, [id('a')]), ['b', 'c']);
            assertReceivers(await deliver('d', 'SendToGroupExcept', g, [id('a'), id('d')]), ['b', 'c']);
            assertReceivers(await deliver('d', 'SendToGroupExcept', g, []), ['a', 'b', 'c']);
            await leave(g, 'a', 'b', 'c');
        });

        it('SendToOthersInGroup skips the caller', async () => {
            const g = 'group-others';
            await join(g, 'a', 'b');
            assertReceivers(await deliver('a', 'SendToOthersInGroup', g), ['b']);
            // a caller outside the group reaches all members
            assertReceivers(await deliver('c', 'SendToOthersInGroup', g), ['a', 'b']);
            await leave(g, 'a', 'b');
        });

        it('SendToUser reaches every connection of that user', async () => {
            assertReceivers(await deliver('d', 'SendToUser', 'alice'), ['a', 'b']);
            assertReceivers(await deliver('a', 'SendToUser', 'bob'), ['c']);
            assertReceivers(await deliver('a', 'SendToUser', 'nobody'), []);
        });

        it('SendToUsers reaches every connection of those users', async () => {
            assertReceivers(await deliver('a', 'SendToUsers', ['bob', 'carol']), ['c', 'd']);
            assertReceivers(await deliver('c', 'SendToUsers', ['alice', 'carol']), ['a', 'b', 'd']);
            assertReceivers(await deliver('c', 'SendToUsers', []), []);
        });

        it('messages from one sender to one receiver arrive in order', async () => {
            const n = 50;
            const tag = fresh('order');
            const expected = Array.from({ length: n }, (_, i) => `${tag} ${i}`);
            for (const m of expected) {
                await conns.a.send('SendToConnection', id('c'), m); // fire-and-forget
            }
            const received = () => inbox.c.filter((m) => m.startsWith(`${tag} `));
            await waitUntil(() => received().length >= n, 5_000, `${n} ordered messages at c`);
            await sync();
            assert.deepEqual(received(), expected);
        });

        it('a message that was not targeted at a connection never shows up later', async () => {
            // Everything above was checked right after a barrier; make sure nothing straggles in afterwards.
            const before = Object.fromEntries(Object.keys(PEOPLE).map((n) => [n, inbox[n].length]));
            await sync();
            await new Promise((r) => setTimeout(r, 200));
            await sync();
            assert.deepEqual(Object.fromEntries(Object.keys(PEOPLE).map((n) => [n, inbox[n].length])), before);
        });
    });
}
