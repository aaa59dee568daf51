// Soak test (CI variant): a bounded mixed workload against `interop --short-timeouts`, on every
// transport and both protocols, with faults: abrupt drops (WebSockets, mid-SSE, mid-poll),
// panicking calls, abandoned uploads and cancelled streams, client-result timeouts,
// stateful-reconnect clients that never come back, and a slow consumer (see episodes.mjs).
//
// Afterwards the server must have forgotten everything: GET /health shows 0 connections, 0 groups
// and 0 users, and its resident size (VmRSS) is back within 20 % of its value after a warm-up
// round.
//
// Environment: SOAK_SECONDS (how long the workload runs after the warm-up; default 60),
// SOAK_EPISODES (comma-separated episode names to run; default all, see workload.mjs),
// INTEROP_BIN, HUB_TEST_LOG=1.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startInterop, delay } from '../interop/server.mjs';
import { workload, settle, residentKiB, RSS_TOLERANCE } from './measure.mjs';

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 60);

describe('soak: mixed workload with faults against interop --short-timeouts', { timeout: (SOAK_SECONDS + 180) * 1000 }, () => {
    let ctx;
    let baseline;
    let afterWorkload;

    before(async () => {
        ctx = await startInterop(['--short-timeouts']);
        // Warm-up: one round, then let the server forget it; the resident size from then on is the baseline.
        await workload(ctx.url, 0);
        await settle(ctx.url);
        await delay(500);
        baseline = residentKiB(ctx.server.child.pid);
    }, { timeout: 120_000 });

    after(async () => {
        await ctx?.close();
    }, { timeout: 15_000 });

    it(`runs the workload for ${SOAK_SECONDS} s; every episode behaves`, { timeout: (SOAK_SECONDS + 90) * 1000 }, async () => {
        const result = await workload(ctx.url, SOAK_SECONDS);
        afterWorkload = await settle(ctx.url);
        const report = Object.entries(result.failures).map(([label, { count, last }]) => `${label}: ${count}× (${last})`);
        console.log(`soak: ${result.rounds} rounds, ${result.runs} episodes, ${report.length} kinds failing, ` +
            `${result.clientRejections} rejections inside the client; after settling ${JSON.stringify(afterWorkload)}`);
        assert.deepEqual(report, [], 'episodes that failed');
    });

    it('/health shows 0 connections', () => {
        assert.equal(afterWorkload?.connections, 0, `connections left: ${JSON.stringify(afterWorkload)}`);
    });

    it('/health shows the group map empty', () => {
        assert.equal(afterWorkload?.groups, 0, `groups left: ${JSON.stringify(afterWorkload)}`);
    });

    it('/health shows the user map empty', () => {
        assert.equal(afterWorkload?.users, 0, `users left: ${JSON.stringify(afterWorkload)}`);
    });

    it(`resident size is back within ${RSS_TOLERANCE * 100} % of its value after the warm-up`, async () => {
        await delay(500);
        const now = residentKiB(ctx.server.child.pid);
        console.log(`soak: VmRSS after warm-up ${baseline} KiB, after the workload ${now} KiB`);
        assert.ok(now <= baseline * (1 + RSS_TOLERANCE), `VmRSS ${now} KiB > ${baseline} KiB + ${RSS_TOLERANCE * 100} %`);
    });
});
