// Scale-out under load: bursts of 10,000 fire-and-forget sends whose receivers live on other servers.
// Every receiver must get every message exactly once, and each sender's messages in the order sent.
//
//   node 0: s (sender, WebSockets/json)        r0 (receiver, WebSockets/json)
//   node 1: t (sender, WebSockets/messagepack) r1 (receiver, WebSockets/json)
//   node 2: r2 (receiver, WebSockets/messagepack)
//
// After each burst: a bounded wait until the receivers hold the expected count, then a barrier (an
// Echo round trip on every connection, and a SendToAll fence from each sender that every receiver
// must see), then the exact comparison — so duplicates or stragglers would show.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startCluster, invoke, delay, withTimeout } from './cluster.mjs';

const N = 10_000;
/** Bound for writing one burst, and again for delivering it. */
const BURST_TIMEOUT = 30_000;
/** Bound for one test (both bursts of the group test included). */
const TEST_TIMEOUT = 60_000;

let cluster;
const c = {};

before(async () => {
    cluster = await startCluster(3);
    const ws = (protocol) => ({ transport: 'WebSockets', protocol });
    [c.s, c.r0, c.t, c.r1, c.r2] = await Promise.all([
        cluster.connect(0, 'sender-s', ws('json')),
        cluster.connect(0, 'receiver-0', ws('json')),
        cluster.connect(1, 'sender-t', ws('messagepack')),
        cluster.connect(1, 'receiver-1', ws('json')),
        cluster.connect(2, 'receiver-2', ws('messagepack')),
    ]);
}, { timeout: 30_000 });

after(async () => {
    await cluster?.close();
}, { timeout: 15_000 });

/** Waits (bounded) until `predicate()` holds, polling every 20 ms; the error names what was missing. */
async function until(predicate, ms, describeMissing) {
    const deadline = Date.now() + ms;
    while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms: ${describeMissing()}`);
        await delay(20);
    }
}

/** `sender` send()s `N` messages `${tag} ${i}` built by `args(i)`; resolves when all are written. */
function burst(sender, method, tag, args) {
    const sends = [];
    for (let i = 0; i < N; i++) sends.push(sender.send(method, ...args(), `${tag} ${i}`));
    return withTimeout(Promise.all(sends), BURST_TIMEOUT, `${N} sends of ${tag} to be written`);
}

const sequence = (tag) => Array.from({ length: N }, (_, i) => `${tag} ${i}`);

/** Echo on every connection, then a SendToAll fence from each sender that everyone must see. */
async function barrier(...senders) {
    await Promise.all(Object.values(c).map((x) => invoke(x, 'Echo', 'sync')));
    for (const sender of senders) {
        const text = `fence ${Math.random()}`;
        await invoke(sender, 'SendToAll', text);
        await until(() => Object.values(c).every((x) => x.inbox.includes(text)), 5_000, () => `fence ${text}`);
    }
}

describe('bursts of 10,000 messages across servers', { timeout: 85_000 }, () => {
    it('SendToConnection: 10,000 messages to a connection on another server, each once, in order', { timeout: TEST_TIMEOUT }, async (t) => {
        const tag = 'direct';
        const started = Date.now();
        await burst(c.s, 'SendToConnection', tag, () => [c.r1.connectionId]);
        const got = () => c.r1.inbox.filter((m) => m.startsWith(`${tag} `));
        await until(() => got().length >= N, BURST_TIMEOUT, () => `r1 has ${got().length} of ${N}`);
        const elapsed = Date.now() - started;
        await barrier(c.s);
        assert.deepEqual(got(), sequence(tag));
        for (const x of [c.s, c.r0, c.t, c.r2]) assert.equal(x.inbox.filter((m) => m.startsWith(`${tag} `)).length, 0);
        t.diagnostic(`${N} cross-server SendToConnection messages delivered in ${elapsed} ms`);
    });

    it('SendToGroup: two senders on two servers, 10,000 each, to members on all three servers', { timeout: TEST_TIMEOUT }, async (t) => {
        const group = 'burst-group';
        await Promise.all([c.r0, c.r1, c.r2].map((x) => invoke(x, 'JoinGroup', group)));
        const started = Date.now();
        await Promise.all([
            burst(c.s, 'SendToGroup', 'from-s', () => [group]),
            burst(c.t, 'SendToGroup', 'from-t', () => [group]),
        ]);
        const of = (x, tag) => x.inbox.filter((m) => m.startsWith(`${tag} `));
        const receivers = { r0: c.r0, r1: c.r1, r2: c.r2 };
        await until(
            () => Object.values(receivers).every((x) => of(x, 'from-s').length >= N && of(x, 'from-t').length >= N),
            BURST_TIMEOUT,
            () => Object.entries(receivers).map(([n, x]) => `${n}: ${of(x, 'from-s').length} from s, ${of(x, 'from-t').length} from t`).join('; '),
        );
        const elapsed = Date.now() - started;
        await barrier(c.s, c.t);
        for (const [name, x] of Object.entries(receivers)) {
            // Each sender's messages exactly once and in order (the two senders interleave freely).
            assert.deepEqual(of(x, 'from-s'), sequence('from-s'), `${name}: messages from s`);
            assert.deepEqual(of(x, 'from-t'), sequence('from-t'), `${name}: messages from t`);
        }
        for (const x of [c.s, c.t]) assert.equal(x.inbox.filter((m) => m.startsWith('from-')).length, 0);
        t.diagnostic(`${2 * N} SendToGroup messages × 3 members on 3 servers delivered in ${elapsed} ms`);
    });

    it('no client saw an error and every server is still running', () => {
        for (const [name, x] of Object.entries(c)) {
            assert.equal(x.state, 'Connected', name);
            assert.deepEqual(x.logger.errors(), [], name);
        }
        for (const node of cluster.nodes) assert.ok(node.alive(), `${node.name} is running`);
    });
});
