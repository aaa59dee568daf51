// Presence across three interop processes sharing Redis, PostgreSQL or NATS (JetStream)
// (`--presence-ttl 3`), with the official client: Members seen from every node, one Joined for
// first connections joining on two nodes at once, and the members of a node killed with SIGKILL
// leaving within the TTL, once. Runs on every backplane (SCALEOUT_BACKPLANE, see brokers.mjs).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startCluster, invoke, delay, BACKPLANE } from './cluster.mjs';

const TTL_SECONDS = 3;

describe('presence across servers', { timeout: 60_000 }, () => {
    let cluster;

    before(async () => {
        cluster = await startCluster(3, ['--presence-ttl', String(TTL_SECONDS)]);
    }, { timeout: 30_000 });

    after(async () => {
        await cluster?.close();
    }, { timeout: 15_000 });

    /** A connection as `user` to node `index` that records its Joined/Left events. */
    async function person(index, user) {
        const c = await cluster.connect(index, user);
        c.events = [];
        c.on('Joined', (g, u) => { c.events.push(['Joined', g, u]); });
        c.on('Left', (g, u) => { c.events.push(['Left', g, u]); });
        return c;
    }

    const count = (c, kind, group, user) =>
        c.events.filter(([k, g, u]) => k === kind && g === group && u === user).length;

    async function eventually(predicate, ms, what) {
        const deadline = Date.now() + ms;
        while (!predicate()) {
            if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
            await delay(20);
        }
    }

    it('every node answers Members with every node\'s users', async () => {
        const people = await Promise.all([person(0, 'u0'), person(1, 'u1'), person(2, 'u2')]);
        for (const p of people) await invoke(p, 'JoinGroup', 'everywhere');
        for (const p of people) assert.deepEqual(await invoke(p, 'Members', 'everywhere'), ['u0', 'u1', 'u2']);
        await invoke(people[1], 'LeaveGroup', 'everywhere');
        for (const p of people) assert.deepEqual(await invoke(p, 'Members', 'everywhere'), ['u0', 'u2']);
    });

    it('first connections joining on two nodes at once make one Joined', async () => {
        const watcher = await person(2, 'watcher');
        const rounds = 5;
        for (let i = 0; i < rounds; i++) await invoke(watcher, 'JoinGroup', `race-${i}`);
        for (let i = 0; i < rounds; i++) {
            const [a, b] = await Promise.all([person(0, 'ann'), person(1, 'ann')]);
            await Promise.all([invoke(a, 'JoinGroup', `race-${i}`), invoke(b, 'JoinGroup', `race-${i}`)]);
        }
        await eventually(() => [...Array(rounds).keys()].every((i) => count(watcher, 'Joined', `race-${i}`, 'ann')),
            5_000, 'a Joined for every round');
        await delay(500);
        for (let i = 0; i < rounds; i++) {
            assert.equal(count(watcher, 'Joined', `race-${i}`, 'ann'), 1, JSON.stringify(watcher.events));
        }
    });

    it('the members of a node killed with SIGKILL leave within the TTL, once', async () => {
        const [amy, ben, carl] = await Promise.all([person(0, 'amy'), person(1, 'ben'), person(2, 'carl')]);
        for (const p of [amy, ben, carl]) await invoke(p, 'JoinGroup', 'doomed');
        assert.deepEqual(await invoke(amy, 'Members', 'doomed'), ['amy', 'ben', 'carl']);
        const killed = Date.now();
        cluster.nodes[2].child.kill('SIGKILL');
        await eventually(() => count(amy, 'Left', 'doomed', 'carl') && count(ben, 'Left', 'doomed', 'carl'),
            TTL_SECONDS * 1000 + 3_000, 'Left for carl on both living nodes');
        const took = Date.now() - killed;
        assert.ok(took <= TTL_SECONDS * 1000 + 500, `carl left ${took} ms after his node died`);
        await delay(TTL_SECONDS * 500);
        assert.equal(count(amy, 'Left', 'doomed', 'carl'), 1);
        assert.equal(count(ben, 'Left', 'doomed', 'carl'), 1);
        assert.deepEqual(await invoke(ben, 'Members', 'doomed'), ['amy', 'ben']);
    });
});
