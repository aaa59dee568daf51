// Scale-out: every BroadcastHub send target and group operation across three `interop` servers
// joined by one broker (SCALEOUT_BACKPLANE: Redis, PostgreSQL or NATS), with official-client
// connections spread over the servers (and over the transports and protocols: a message crosses the
// broker once per protocol and is forwarded verbatim).
//
// Who lives where:
//
//   node 0: a (alice, WebSockets/json)       f (carol, LongPolling/messagepack)
//   node 1: b (alice, WebSockets/messagepack) c (bob, ServerSentEvents/json)
//   node 2: d (carol, LongPolling/json)      e (dave, WebSockets/json)
//
// Barrier ("fence"): once every intended receiver has a message, the same sender invokes
// SendToAll(fence) and every connection waits for the fence. What one sender sends to one target
// arrives in order on every backplane; messages to different targets travel on different
// channels or subjects, whose relative order only Redis and PostgreSQL keep (NATS reads each
// subject on its own, as ASP.NET Core reads each Redis channel) — so the fence follows a message
// only after its receivers have it, and a connection that got nothing by the fence is checked
// again at the end: every connection's inbox is compared in full with what it should have
// received, so nothing arrives twice, late or where it should not.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startCluster, invoke, withTimeout, delay, stopConnection, BACKPLANE } from './cluster.mjs';

const PEOPLE = {
    a: { node: 0, user: 'alice', transport: 'WebSockets', protocol: 'json' },
    b: { node: 1, user: 'alice', transport: 'WebSockets', protocol: 'messagepack' },
    c: { node: 1, user: 'bob', transport: 'ServerSentEvents', protocol: 'json' },
    d: { node: 2, user: 'carol', transport: 'LongPolling', protocol: 'json' },
    e: { node: 2, user: 'dave', transport: 'WebSockets', protocol: 'json' },
    f: { node: 0, user: 'carol', transport: 'LongPolling', protocol: 'messagepack' },
};
const NAMES = Object.keys(PEOPLE);
const FENCE_TIMEOUT = 5_000;

let cluster;
/** name → HubConnection (with .inbox) */
const conns = {};
/** name → every message it should have received so far, in order */
const expected = Object.fromEntries(NAMES.map((n) => [n, []]));
let counter = 0;

before(async () => {
    cluster = await startCluster(3);
    await Promise.all(NAMES.map(async (name) => {
        const { node, user, transport, protocol } = PEOPLE[name];
        conns[name] = await cluster.connect(node, user, { transport, protocol });
    }));
}, { timeout: 30_000 });

after(async () => {
    await cluster?.close();
}, { timeout: 15_000 });

const id = (name) => conns[name].connectionId;

/** Waits until every connection of `names` has received `message` (bounded). */
async function waitFor(message, names = NAMES, ms = FENCE_TIMEOUT) {
    const deadline = Date.now() + ms;
    for (;;) {
        const missing = names.filter((n) => !conns[n].inbox.includes(message));
        if (missing.length === 0) return;
        if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${missing.join(', ')} never got "${message}"`);
        await delay(5);
    }
}

/** `sender` sends SendToAll(fence); resolves once every connection has it. */
async function fence(sender) {
    const text = `fence #${++counter} from ${sender}`;
    await invoke(conns[sender], 'SendToAll', text);
    await waitFor(text);
    for (const n of NAMES) expected[n].push(text);
}

/**
 * `sender` invokes `method(...args, message)`, then fences; asserts that exactly the connections in
 * `receivers` got one copy each (and nobody else any).
 */
async function deliver(sender, receivers, method, ...args) {
    // Non-ASCII and JSON-escaped characters: each protocol's bytes must cross the broker untouched.
    const message = `${method} #${++counter} from ${sender} grüße 👋 "q" \\`;
    await invoke(conns[sender], method, ...args, message);
    for (const n of receivers) expected[n].push(message);
    if (receivers.length) await waitFor(message, receivers);
    await fence(sender);
    const counts = Object.fromEntries(NAMES.map((n) => [n, conns[n].inbox.filter((m) => m === message).length]));
    const want = Object.fromEntries(NAMES.map((n) => [n, receivers.includes(n) ? 1 : 0]));
    assert.deepEqual(counts, want, `${method}(${JSON.stringify(args)}) from ${sender}`);
}

const join = (group, ...names) => Promise.all(names.map((n) => invoke(conns[n], 'JoinGroup', group)));
const leave = (group, ...names) => Promise.all(names.map((n) => invoke(conns[n], 'LeaveGroup', group)));
const others = (...names) => NAMES.filter((n) => !names.includes(n));

describe(`BroadcastHub across three servers on one ${BACKPLANE} backplane`, { timeout: 60_000 }, () => {
    it('every connection lives on its own server and knows its id', async () => {
        for (const name of NAMES) {
            assert.equal(conns[name].node, PEOPLE[name].node);
            assert.equal(await invoke(conns[name], 'GetConnectionId'), id(name));
        }
        assert.equal(new Set(NAMES.map(id)).size, NAMES.length);
        assert.equal(new Set(cluster.nodes.map((n) => n.url)).size, 3);
    });

    it('SendToAll from every server reaches every connection once', async () => {
        for (const sender of ['a', 'c', 'e', 'd']) await deliver(sender, NAMES, 'SendToAll');
    });

    it('SendToOthers reaches everyone but the caller, on every server', async () => {
        await deliver('a', others('a'), 'SendToOthers');
        await deliver('c', others('c'), 'SendToOthers');
        await deliver('d', others('d'), 'SendToOthers');
    });

    it('SendToAllExcept skips excluded connections wherever they live', async () => {
        await deliver('a', ['a', 'c', 'e', 'f'], 'SendToAllExcept', [id('b'), id('d')]);
        await deliver('e', others('e', 'f'), 'SendToAllExcept', [id('e'), id('f')]);
        await deliver('c', NAMES, 'SendToAllExcept', []);
        await deliver('c', NAMES, 'SendToAllExcept', ['no-such-connection']);
    });

    it('SendToConnection reaches that connection on its server only', async () => {
        await deliver('a', ['d'], 'SendToConnection', id('d'));
        await deliver('a', ['b'], 'SendToConnection', id('b'));
        await deliver('a', ['f'], 'SendToConnection', id('f'));
        await deliver('d', ['a'], 'SendToConnection', id('a'));
        await deliver('c', ['c'], 'SendToConnection', id('c'));
        await deliver('e', [], 'SendToConnection', 'no-such-connection');
    });

    it('SendToConnections reaches exactly those connections, each once', async () => {
        await deliver('a', ['b', 'd', 'f'], 'SendToConnections', [id('b'), id('d'), id('f')]);
        await deliver('b', ['a', 'c', 'e'], 'SendToConnections', [id('c'), id('c'), id('e'), id('a'), id('e')]);
        await deliver('d', [], 'SendToConnections', []);
        await deliver('d', ['d'], 'SendToConnections', [id('d'), 'no-such-connection']);
    });

    it('SendToGroup reaches members on every server; LeaveGroup stops it', async () => {
        const g = 'group-spread';
        await join(g, 'a', 'c', 'e');
        await deliver('d', ['a', 'c', 'e'], 'SendToGroup', g); // sender on a member's server, not a member
        await deliver('f', ['a', 'c', 'e'], 'SendToGroup', g);
        await deliver('a', ['a', 'c', 'e'], 'SendToGroup', g);
        await leave(g, 'c');
        await deliver('b', ['a', 'e'], 'SendToGroup', g); // node 1 has no member left
        await leave(g, 'a', 'e');
        await deliver('b', [], 'SendToGroup', g);
        await deliver('b', [], 'SendToGroup', 'group-nobody');
    });

    it('a join is in force on every server when JoinGroup returns, a leave when LeaveGroup returns', async () => {
        // Each round: a fresh group (so the member's server must subscribe first), the member joins, and
        // a sender on another server sends the moment JoinGroup resolved.
        const pairs = [['b', 'a'], ['d', 'c'], ['a', 'e'], ['f', 'd'], ['c', 'f'], ['e', 'b']];
        for (let round = 0; round < 4; round++) {
            for (const [member, sender] of pairs) {
                const g = `join-race-${round}-${member}`;
                await invoke(conns[member], 'JoinGroup', g);
                await deliver(sender, [member], 'SendToGroup', g);
                await invoke(conns[member], 'LeaveGroup', g);
                await deliver(sender, [], 'SendToGroup', g);
            }
        }
    });

    it('a group keeps working on a server while another local member remains', async () => {
        const g = 'group-two-local';
        await join(g, 'b', 'c'); // both on node 1
        await deliver('a', ['b', 'c'], 'SendToGroup', g);
        await leave(g, 'b');
        await deliver('a', ['c'], 'SendToGroup', g);
        await join(g, 'b');
        await deliver('e', ['b', 'c'], 'SendToGroup', g);
        await leave(g, 'b', 'c');
        await deliver('e', [], 'SendToGroup', g);
    });

    it('joining twice delivers once; group names are case-sensitive', async () => {
        const g = 'group-twice';
        await join(g, 'd');
        await join(g, 'd');
        await deliver('a', ['d'], 'SendToGroup', g);
        await deliver('a', [], 'SendToGroup', g.toUpperCase());
        await leave(g, 'd');
        await deliver('a', [], 'SendToGroup', g);
    });

    it('SendToGroups reaches members of any group once, also a member of two targeted groups', async () => {
        const [g1, g2, g3] = ['groups-1', 'groups-2', 'groups-3'];
        await join(g1, 'a', 'c');
        await join(g2, 'c', 'd', 'e'); // c (node 1) is in both
        await join(g3, 'f');
        await deliver('b', ['a', 'c', 'd', 'e'], 'SendToGroups', [g1, g2]);
        await deliver('f', ['a', 'c', 'd', 'e', 'f'], 'SendToGroups', [g1, g2, g3, g1]);
        await deliver('d', ['c', 'd', 'e'], 'SendToGroups', [g2]);
        await deliver('d', [], 'SendToGroups', []);
        await deliver('d', [], 'SendToGroups', ['groups-nobody']);
        await leave(g1, 'a', 'c');
        await leave(g2, 'c', 'd', 'e');
        await leave(g3, 'f');
        await deliver('b', [], 'SendToGroups', [g1, g2, g3]);
    });

    it('SendToGroupExcept skips excluded members on other servers', async () => {
        const g = 'group-except';
        await join(g, 'a', 'b', 'c', 'd');
        await deliver('e', ['a', 'c'], 'SendToGroupExcept', g, [id('b'), id('d')]);
        await deliver('a', ['b', 'c', 'd'], 'SendToGroupExcept', g, [id('a'), id('e')]);
        await deliver('f', ['a', 'b', 'c', 'd'], 'SendToGroupExcept', g, []);
        await leave(g, 'a', 'b', 'c', 'd');
    });

    it('SendToOthersInGroup skips the caller only', async () => {
        const g = 'group-others';
        await join(g, 'a', 'b', 'd');
        await deliver('a', ['b', 'd'], 'SendToOthersInGroup', g);
        await deliver('b', ['a', 'd'], 'SendToOthersInGroup', g);
        await deliver('d', ['a', 'b'], 'SendToOthersInGroup', g);
        await deliver('c', ['a', 'b', 'd'], 'SendToOthersInGroup', g); // a caller outside the group
        await leave(g, 'a', 'b', 'd');
    });

    it("SendToUser reaches the user's connections on every server", async () => {
        await deliver('e', ['a', 'b'], 'SendToUser', 'alice'); // node 0 and node 1
        await deliver('b', ['d', 'f'], 'SendToUser', 'carol'); // node 2 and node 0
        await deliver('a', ['c'], 'SendToUser', 'bob');
        await deliver('a', ['a', 'b'], 'SendToUser', 'alice'); // the caller is one of them
        await deliver('a', [], 'SendToUser', 'nobody');
    });

    it('SendToUsers reaches every connection of those users once', async () => {
        await deliver('c', ['a', 'b', 'e'], 'SendToUsers', ['alice', 'dave']);
        await deliver('e', ['a', 'b', 'd', 'f'], 'SendToUsers', ['alice', 'carol', 'alice']);
        await deliver('d', ['c'], 'SendToUsers', ['bob', 'nobody']);
        await deliver('d', [], 'SendToUsers', []);
    });

    it('a connection that leaves takes its group and user with it; the others keep receiving', async () => {
        const g = 'group-leaver';
        const temp = await cluster.connect(1, 'temp', { transport: 'WebSockets', protocol: 'json' });
        await join(g, 'a', 'e');
        await invoke(temp, 'JoinGroup', g);
        const hello = `hello temp #${++counter}`;
        await invoke(conns.d, 'SendToUser', 'temp', hello);
        await withTimeout((async () => { while (!temp.inbox.includes(hello)) await delay(5); })(), FENCE_TIMEOUT, 'temp to get its message');
        const tempId = temp.connectionId;
        await stopConnection(temp);
        await deliver('d', ['a', 'e'], 'SendToGroup', g);
        await deliver('d', [], 'SendToUser', 'temp');
        await deliver('b', [], 'SendToConnection', tempId);
        await leave(g, 'a', 'e');
        assert.deepEqual(temp.inbox, [hello]);
    });

    it('nothing arrived twice, late, or out of order', async () => {
        for (const sender of ['a', 'c', 'e']) await fence(sender);
        await delay(200);
        await fence('b');
        for (const name of NAMES) assert.deepEqual(conns[name].inbox, expected[name], `inbox of ${name}`);
        for (const name of NAMES) assert.deepEqual(conns[name].logger.errors(), [], `client errors of ${name}`);
        for (const node of cluster.nodes) assert.ok(node.alive(), `${node.name} is running`);
    });
});
