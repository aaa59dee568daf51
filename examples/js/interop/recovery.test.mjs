// BroadcastHub durable groups (`durable-*`) with the official client: Publish returns positions,
// Subscribe (a server-to-client stream) sends a header, the missed messages, then live ones; a client
// resumes from its last position after its connection ended; overflow and expiry say Recovered false.
// One server per history setting (--history-size, --history-ttl); last, servers on one private
// redis-server (--redis), then on one private PostgreSQL cluster (--postgres), then on one private
// nats-server with JetStream (--nats), where the history outlives a server and several servers
// number one group without gaps.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MATRIX, comboName, startInterop, invoke, stopConnection, waitUntil, delay, OP_TIMEOUT } from './server.mjs';
import { Nats, Postgres, Redis, freePort } from '../scaleout/brokers.mjs';

/**
 * The pattern the guide shows: follow a durable group, remembering the last position, so that a
 * new connection resumes where the last one stopped. `seen` gets every message; `headers` every header.
 */
function follow(connection, group, from = null) {
    const state = { last: from, seen: [], headers: [], error: null, done: false };
    const subscription = connection.stream('Subscribe', group, from).subscribe({
        next(item) {
            if ('Recovered' in item) {
                state.headers.push(item);
                // Not recovered (or nothing asked): go on from the current position.
                if (!item.Recovered || state.last === null || state.last.Epoch !== item.Epoch) {
                    state.last = { Epoch: item.Epoch, Offset: item.Offset };
                }
            } else {
                state.seen.push(item);
                state.last = { Epoch: state.last.Epoch, Offset: item.Offset };
            }
        },
        error(err) { state.error = err; },
        complete() { state.done = true; },
    });
    state.dispose = () => subscription.dispose();
    return state;
}

const messages = (state) => state.seen.map((i) => i.Message);
const offsets = (state) => state.seen.map((i) => i.Offset);

async function publishAll(connection, group, texts) {
    const positions = [];
    for (const text of texts) positions.push(await invoke(connection, 'Publish', group, text));
    return positions;
}

describe('Recovery with the default history', { timeout: 60_000 }, () => {
    let ctx;
    before(async () => { ctx = await startInterop(); }, { timeout: 15_000 });
    after(async () => { await ctx?.close(); }, { timeout: 10_000 });

    it('Publish to a group not named durable-* fails', async () => {
        const c = await ctx.connect('/broadcast');
        await assert.rejects(invoke(c, 'Publish', 'news', 'x'), /news/);
    });

    it('positions count from 1 without gaps', async () => {
        const c = await ctx.connect('/broadcast');
        const positions = await publishAll(c, 'durable-count', ['a', 'b', 'c']);
        assert.deepEqual(positions.map((p) => p.Offset), [1, 2, 3]);
        assert.equal(new Set(positions.map((p) => p.Epoch)).size, 1);
        assert.deepEqual(Object.keys(positions[0]).sort(), ['Epoch', 'Offset']);
    });

    for (const combo of MATRIX) {
        it(`a client resumes with exactly the missed messages over ${comboName(combo)}`, async () => {
            const group = `durable-resume-${combo.transport}-${combo.protocol}`;
            const publisher = await ctx.connect('/broadcast', combo);
            const first = await ctx.connect('/broadcast', combo);
            const live = follow(first, group);
            await waitUntil(() => live.headers.length === 1, OP_TIMEOUT, 'the header');
            assert.deepEqual(live.headers[0], { Recovered: true, Epoch: live.headers[0].Epoch, Offset: 0 });
            await publishAll(publisher, group, ['m1', 'm2']);
            await waitUntil(() => live.seen.length === 2, OP_TIMEOUT, 'two live messages');
            assert.deepEqual(live.seen, [{ Offset: 1, Message: 'm1' }, { Offset: 2, Message: 'm2' }]);
            const last = live.last;
            await stopConnection(first);

            await publishAll(publisher, group, ['m3', 'm4']);
            const second = await ctx.connect('/broadcast', combo);
            const resumed = follow(second, group, last);
            await waitUntil(() => resumed.seen.length === 2, OP_TIMEOUT, 'the missed messages');
            assert.deepEqual(resumed.headers, [{ Recovered: true, Epoch: last.Epoch, Offset: 4 }]);
            await publishAll(publisher, group, ['m5']);
            await waitUntil(() => resumed.seen.length === 3, OP_TIMEOUT, 'a live message');
            assert.deepEqual(messages(resumed), ['m3', 'm4', 'm5']);
            assert.deepEqual(offsets(resumed), [3, 4, 5]);
            resumed.dispose();
        });
    }

    it('live messages published during recovery are merged without gaps or duplicates', async () => {
        const group = 'durable-race';
        const publisher = await ctx.connect('/broadcast');
        await publishAll(publisher, group, Array.from({ length: 20 }, (_, i) => `m${i + 1}`));
        const epoch = (await invoke(publisher, 'Publish', group, 'm21')).Epoch;
        // 300 publishes in flight while four clients subscribe from different positions.
        const flood = Promise.all(Array.from({ length: 300 }, (_, i) => publisher.invoke('Publish', group, `m${i + 22}`)));
        const followers = [];
        for (let k = 0; k < 4; k++) {
            const c = await ctx.connect('/broadcast');
            followers.push({ from: 5 * k, state: follow(c, group, { Epoch: epoch, Offset: 5 * k }) });
            await delay(3);
        }
        await flood;
        for (const { from, state } of followers) {
            await waitUntil(() => state.seen.length >= 321 - from, 10_000, `messages after ${from}`);
            await delay(100);
            assert.equal(state.headers.length, 1);
            assert.equal(state.headers[0].Recovered, true);
            assert.deepEqual(offsets(state), Array.from({ length: 321 - from }, (_, i) => from + i + 1));
            assert.deepEqual(messages(state), offsets(state).map((o) => `m${o}`));
            state.dispose();
        }
    });

    it('an unknown epoch, a negative or a future offset is not recovered', async () => {
        const group = 'durable-bad';
        const c = await ctx.connect('/broadcast');
        const [p] = await publishAll(c, group, ['m1']);
        for (const from of [{ Epoch: 'nope', Offset: 0 }, { Epoch: p.Epoch, Offset: -1 }, { Epoch: p.Epoch, Offset: 9 }]) {
            const state = follow(c, group, from);
            await waitUntil(() => state.headers.length === 1, OP_TIMEOUT, 'the header');
            assert.deepEqual(state.headers[0], { Recovered: false, Epoch: p.Epoch, Offset: 1 });
            await delay(100);
            assert.deepEqual(state.seen, [], 'nothing stale');
            state.dispose();
        }
    });
});

describe('Recovery past the history size (--history-size 3)', { timeout: 30_000 }, () => {
    let ctx;
    before(async () => { ctx = await startInterop(['--history-size', '3']); }, { timeout: 15_000 });
    after(async () => { await ctx?.close(); }, { timeout: 10_000 });

    it('evicted messages: Recovered false, nothing stale, then live', async () => {
        const group = 'durable-small';
        const c = await ctx.connect('/broadcast');
        const positions = await publishAll(c, group, ['m1', 'm2', 'm3', 'm4', 'm5']);
        const epoch = positions[0].Epoch;
        const lost = follow(c, group, { Epoch: epoch, Offset: 1 });
        const kept = follow(c, group, { Epoch: epoch, Offset: 2 });
        await waitUntil(() => lost.headers.length === 1 && kept.seen.length === 3, OP_TIMEOUT, 'both recoveries');
        assert.deepEqual(lost.headers[0], { Recovered: false, Epoch: epoch, Offset: 5 });
        assert.deepEqual(lost.seen, []);
        assert.deepEqual(kept.headers[0], { Recovered: true, Epoch: epoch, Offset: 5 });
        assert.deepEqual(messages(kept), ['m3', 'm4', 'm5']);
        await publishAll(c, group, ['m6']);
        await waitUntil(() => lost.seen.length === 1 && kept.seen.length === 4, OP_TIMEOUT, 'the live message');
        assert.deepEqual(lost.seen, [{ Offset: 6, Message: 'm6' }]);
    });
});

describe('Recovery past the TTL (--history-ttl 2)', { timeout: 30_000 }, () => {
    let ctx;
    before(async () => { ctx = await startInterop(['--history-ttl', '2']); }, { timeout: 15_000 });
    after(async () => { await ctx?.close(); }, { timeout: 10_000 });

    it('expired messages: Recovered false; the new epoch streams on', async () => {
        const group = 'durable-ttl';
        const c = await ctx.connect('/broadcast');
        const [p] = await publishAll(c, group, ['m1']);
        const watching = follow(c, group, null);
        await waitUntil(() => watching.headers.length === 1, OP_TIMEOUT, 'the header');
        await delay(2_500);
        const late = follow(c, group, { Epoch: p.Epoch, Offset: 0 });
        await waitUntil(() => late.headers.length === 1, OP_TIMEOUT, 'the header');
        assert.equal(late.headers[0].Recovered, false);
        const [fresh] = await publishAll(c, group, ['n1']);
        assert.notEqual(fresh.Epoch, p.Epoch, 'the lost history starts a new epoch');
        assert.equal(fresh.Offset, 1);
        await waitUntil(() => watching.seen.length === 1, OP_TIMEOUT, 'the new epoch on the old stream');
        assert.deepEqual(watching.headers[1], { Recovered: false, Epoch: fresh.Epoch, Offset: 0 });
        assert.deepEqual(watching.seen, [{ Offset: 1, Message: 'n1' }]);
    });
});

for (const { label, flag, Broker } of [
    { label: 'Redis', flag: '--redis', Broker: Redis },
    { label: 'PostgreSQL', flag: '--postgres', Broker: Postgres },
    { label: 'NATS JetStream', flag: '--nats', Broker: Nats },
]) {
    describe(`Recovery on ${label} (${flag}): the history outlives a server`, { timeout: 60_000 }, () => {
        let broker;
        const servers = [];
        before(async () => { broker = await new Broker(await freePort()).start(); }, { timeout: 15_000 });
        after(async () => {
            await Promise.all(servers.map((s) => s.close()));
            await broker?.close();
        }, { timeout: 15_000 });

        async function server() {
            const ctx = await startInterop([flag, broker.url]);
            servers.push(ctx);
            return ctx;
        }

        it('a client resumes on another server with exactly what it missed, then live from a third', async () => {
            const group = 'durable-fleet';
            const a = await server();
            const publisherA = await a.connect('/broadcast');
            const watcher = follow(await a.connect('/broadcast'), group);
            await waitUntil(() => watcher.headers.length === 1, OP_TIMEOUT, 'the header');
            await publishAll(publisherA, group, ['m1', 'm2']);
            await waitUntil(() => watcher.seen.length === 2, OP_TIMEOUT, 'two live messages');
            const last = watcher.last;
            await a.close(); // the server goes away with its connections

            const b = await server();
            const c = await server();
            const publisherB = await b.connect('/broadcast');
            const positions = await publishAll(publisherB, group, ['m3', 'm4']);
            assert.deepEqual(positions.map((p) => [p.Epoch, p.Offset]), [[last.Epoch, 3], [last.Epoch, 4]]);
            const resumed = follow(await b.connect('/broadcast'), group, last);
            await waitUntil(() => resumed.seen.length === 2, OP_TIMEOUT, 'the missed messages');
            assert.deepEqual(resumed.headers, [{ Recovered: true, Epoch: last.Epoch, Offset: 4 }]);
            const publisherC = await c.connect('/broadcast');
            const [fifth] = await publishAll(publisherC, group, ['m5']);
            assert.deepEqual(fifth, { Epoch: last.Epoch, Offset: 5 });
            await waitUntil(() => resumed.seen.length === 3, OP_TIMEOUT, 'the message published on another server');
            assert.deepEqual(messages(resumed), ['m3', 'm4', 'm5']);
            assert.deepEqual(offsets(resumed), [3, 4, 5]);
            resumed.dispose();
        });

        it('two servers publishing to one group at once keep its offsets gapless', async () => {
            const group = 'durable-together';
            const [a, b] = [await server(), await server()];
            const watchers = [follow(await a.connect('/broadcast'), group), follow(await b.connect('/broadcast'), group)];
            await waitUntil(() => watchers.every((w) => w.headers.length === 1), OP_TIMEOUT, 'the headers');
            const EACH = 40;
            const publishers = [await a.connect('/broadcast'), await b.connect('/broadcast')];
            const positions = (await Promise.all(publishers.map((p, s) =>
                Promise.all(Array.from({ length: EACH }, (_, i) => invoke(p, 'Publish', group, `s${s}-${i}`)))))).flat();
            const epoch = positions[0].Epoch;
            assert.ok(positions.every((p) => p.Epoch === epoch), 'one epoch');
            const all = Array.from({ length: 2 * EACH }, (_, i) => i + 1);
            assert.deepEqual(positions.map((p) => p.Offset).sort((x, y) => x - y), all);
            for (const watcher of watchers) {
                await waitUntil(() => watcher.seen.length === 2 * EACH, OP_TIMEOUT, 'every message on both servers');
                assert.deepEqual(offsets(watcher), all, 'in offset order, once each');
                watcher.dispose();
            }
        });
    });
}
