// BroadcastHub (/broadcast?user=NAME): every send target, checked for exactly who received a message,
// once per transport/protocol pair in MATRIX, then once with every pair in the same group of receivers.
//
// One server serves the whole file (each suite opens its own connections and closes them afterwards;
// messages are unique per suite and counted per suite's own inboxes, so suites cannot see each other).
//
// Barrier: when a sender's invoke resolves, the server has already queued the Receive messages on the
// targets' connections; an Echo round trip on every receiver afterwards therefore guarantees that
// anything sent to it has been delivered (messages on one connection keep their order).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, startConnection, stopConnection, invoke, waitUntil } from './server.mjs';

const SUITE_TIMEOUT = 30_000;

/** The server every suite of this file talks to. */
let ctx;

before(async () => {
    ctx = await startInterop();
}, { timeout: 15_000 });

after(async () => {
    await ctx?.close();
}, { timeout: 10_000 });

/** The four test connections: name → user. */
const PEOPLE = { a: 'alice', b: 'alice', c: 'bob', d: 'carol' };

for (const combo of MATRIX) {
    describe(`BroadcastHub over ${comboName(combo)}`, { timeout: SUITE_TIMEOUT }, () => {
        /** name → HubConnection */
        const conns = {};
        /** name → received messages, in order */
        const inbox = {};
        let counter = 0;

        before(async () => {
            await Promise.all(Object.entries(PEOPLE).map(async ([name, user]) => {
                const c = ctx.build(`/broadcast?user=${user}`, combo);
                inbox[name] = [];
                c.on('Receive', (msg) => { inbox[name].push(msg); });
                await startConnection(c);
                conns[name] = c;
            }));
        }, { timeout: 15_000 });

        after(async () => {
            await Promise.all(Object.values(conns).map(stopConnection));
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

// Every MATRIX pair in one audience: the server encodes each message once per protocol and writes it to
// every connection in that connection's own protocol and framing (JSON text over WebSockets, SSE events
// and polls; MessagePack binary over WebSockets and polls).
describe('BroadcastHub with receivers on every transport/protocol pair at once', { timeout: SUITE_TIMEOUT }, () => {
    /** One receiver per MATRIX pair, named after it. */
    const members = MATRIX.map((combo, i) => ({ name: comboName(combo), combo, user: `mixed-${i}`, inbox: [], conn: null }));
    let counter = 0;

    before(async () => {
        await Promise.all(members.map(async (m) => {
            const c = ctx.build(`/broadcast?user=${m.user}`, m.combo);
            c.on('Receive', (msg) => { m.inbox.push(msg); });
            await startConnection(c);
            m.conn = c;
        }));
    }, { timeout: 15_000 });

    after(async () => {
        await Promise.all(members.map((m) => m.conn && stopConnection(m.conn)));
    }, { timeout: 10_000 });

    async function sync() {
        await Promise.all(members.map((m) => invoke(m.conn, 'Echo', 'sync')));
    }

    /** `sender` (a member) invokes method(...args, message); returns { member name: copies received }. */
    async function deliver(sender, method, ...args) {
        // Non-ASCII, a JSON-escaped quote and backslash, and the JSON record separator: each protocol must
        // encode it its own way and every receiver must still get exactly this string.
        const message = `mixed ${method} #${++counter} grüße 👋 "q" \\ \u001e end`;
        await invoke(sender.conn, method, ...args, message);
        await sync();
        return Object.fromEntries(members.map((m) => [m.name, m.inbox.filter((x) => x === message).length]));
    }

    function expect(names) {
        return Object.fromEntries(members.map((m) => [m.name, names.includes(m.name) ? 1 : 0]));
    }

    const everyone = () => members.map((m) => m.name);

    it('SendToAll from each pair reaches every pair exactly once', async () => {
        for (const sender of members) {
            assert.deepEqual(await deliver(sender, 'SendToAll'), expect(everyone()), `sender ${sender.name}`);
        }
    });

    it('SendToOthers from each pair reaches every other pair exactly once', async () => {
        for (const sender of members) {
            assert.deepEqual(await deliver(sender, 'SendToOthers'),
                expect(everyone().filter((n) => n !== sender.name)), `sender ${sender.name}`);
        }
    });

    it('SendToGroup and SendToUsers across pairs', async () => {
        const group = 'mixed-group';
        const joined = members.filter((_, i) => i % 2 === 0);
        await Promise.all(joined.map((m) => invoke(m.conn, 'JoinGroup', group)));
        assert.deepEqual(await deliver(members[1], 'SendToGroup', group), expect(joined.map((m) => m.name)));
        await Promise.all(joined.map((m) => invoke(m.conn, 'LeaveGroup', group)));
        assert.deepEqual(await deliver(members[1], 'SendToGroup', group), expect([]));

        const picked = members.filter((_, i) => i % 2 === 1);
        assert.deepEqual(await deliver(members[0], 'SendToUsers', picked.map((m) => m.user)),
            expect(picked.map((m) => m.name)));
    });

    it('SendToConnections with every connection id delivers once to each', async () => {
        const ids = members.map((m) => m.conn.connectionId);
        assert.equal(new Set(ids).size, members.length);
        assert.deepEqual(await deliver(members[members.length - 1], 'SendToConnections', ids), expect(everyone()));
    });

    it('each receiver runs on its own pair and saw no errors', async () => {
        // BroadcastHub has no GetActiveTransportName; look at the client's (internal) transport and protocol.
        const transportClass = { WebSockets: 'WebSocketTransport', ServerSentEvents: 'ServerSentEventsTransport', LongPolling: 'LongPollingTransport' };
        for (const m of members) {
            assert.equal(m.conn.state, 'Connected', m.name);
            assert.equal(m.conn.connection?.transport?.constructor?.name, transportClass[m.combo.transport], m.name);
            assert.equal(m.conn._protocol?.name, m.combo.protocol, m.name);
            assert.deepEqual(m.conn.logger.errors(), [], m.name);
        }
    });
});
