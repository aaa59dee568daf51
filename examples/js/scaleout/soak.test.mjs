// Soak test, scale-out variant: the soak workload (../soak/workload.mjs) against three
// `interop --short-timeouts` processes at once on one broker (SCALEOUT_BACKPLANE), while the broker is killed
// (SIGKILL) and restarted on the same port a second later. Episodes may fail while the broker is down
// (a group join waits for every server); what must hold afterwards is that nothing leaked: every
// server's GET /health shows 0 connections, 0 groups and 0 users, its resident size is back
// within 20 % of its value after a warm-up round, and no server exited.
//
// Environment: SCALEOUT_SOAK_SECONDS (default 30), SOAK_EPISODES (see ../soak/workload.mjs),
// REDIS_SERVER, INTEROP_BIN, HUB_TEST_LOG=1.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { delay } from '../interop/server.mjs';
import { workload, settle, residentKiB, RSS_TOLERANCE } from '../soak/measure.mjs';
import { startCluster, BACKPLANE } from './cluster.mjs';

const SECONDS = Number(process.env.SCALEOUT_SOAK_SECONDS ?? 30);
/** Traffic before the kill, and how long the broker stays down. */
const BEFORE_KILL = Math.min(5_000, (SECONDS * 1000) / 3);
const OUTAGE = 1_000;

describe(`scale-out soak: the workload on three servers through a ${BACKPLANE} restart`, { timeout: (SECONDS + 240) * 1000 }, () => {
    let cluster;
    const baseline = [];
    const settled = [];
    let results = [];

    before(async () => {
        cluster = await startCluster(3, ['--short-timeouts']);
        await Promise.all(cluster.nodes.map((n) => workload(n.url, 0)));
        await Promise.all(cluster.nodes.map((n) => settle(n.url)));
        await delay(500);
        for (const n of cluster.nodes) baseline[n.index] = residentKiB(n.child.pid);
    }, { timeout: 180_000 });

    after(async () => {
        await cluster?.close();
    }, { timeout: 20_000 });

    it(`runs the workload on every server for ${SECONDS} s with a ${BACKPLANE} restart, then nothing is left`, {
        timeout: (SECONDS + 120) * 1000,
    }, async () => {
        const runs = Promise.all(cluster.nodes.map((n) => workload(n.url, SECONDS)));
        await delay(BEFORE_KILL);
        await cluster.broker.kill('SIGKILL');
        await delay(OUTAGE);
        await cluster.broker.start();
        results = await runs;
        const answers = await Promise.all(cluster.nodes.map((n) => settle(n.url)));
        answers.forEach((h, i) => { settled[i] = h; });
        results.forEach((r, i) => {
            const failing = Object.entries(r.failures).map(([label, { count, last }]) => `${label}: ${count}× (${last})`);
            console.log(`scale-out soak: node ${i}: ${r.rounds} rounds, ${r.runs} episodes; failed (not checked: ` +
                `the broker was down for a while): ${failing.length ? failing.join('; ') : 'none'}; ` +
                `after settling ${JSON.stringify(settled[i])}`);
        });
        for (const n of cluster.nodes) {
            assert.ok(n.alive(), `${n.name} exited: ${JSON.stringify(n.exitStatus())}`);
        }
        for (const n of cluster.nodes) {
            const h = settled[n.index];
            assert.deepEqual({ connections: h.connections, groups: h.groups, users: h.users },
                { connections: 0, groups: 0, users: 0 }, `${n.name} still holds something`);
        }
    });

    it(`every server's resident size is back within ${RSS_TOLERANCE * 100} % of its value after the warm-up`, async () => {
        await delay(500);
        for (const n of cluster.nodes) {
            const now = residentKiB(n.child.pid);
            console.log(`scale-out soak: ${n.name} VmRSS after warm-up ${baseline[n.index]} KiB, now ${now} KiB`);
            assert.ok(now <= baseline[n.index] * (1 + RSS_TOLERANCE),
                `${n.name}: VmRSS ${now} KiB > ${baseline[n.index]} KiB + ${RSS_TOLERANCE * 100} %`);
        }
    });
});
