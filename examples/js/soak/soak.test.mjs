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
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { startInterop, withTimeout, delay, OP_TIMEOUT } from '../interop/server.mjs';

const run = promisify(execFile);

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
/** How long the server gets to forget every connection, group and user after the workload. */
const SETTLE_TIMEOUT = 30_000;
/** Allowed growth of the resident size over its value after the warm-up. */
const RSS_TOLERANCE = 0.2;

const WORKLOAD = join(dirname(fileURLToPath(import.meta.url)), 'workload.mjs');

/**
 * Runs the workload in its own Node process (see workload.mjs: the official client lets promise
 * chains reject when a connection ends under them, which node:test would count against the test)
 * and returns its report.
 */
async function workload(url, seconds) {
    const { stdout } = await run(process.execPath, [WORKLOAD, url, String(seconds)], {
        timeout: (seconds + 120) * 1000,
        maxBuffer: 16 * 1024 * 1024,
        env: process.env,
    });
    const last = stdout.trim().split('\n').pop();
    return JSON.parse(last);
}

async function health(url) {
    const res = await withTimeout(fetch(`${url}/health`, { signal: AbortSignal.timeout(OP_TIMEOUT) }),
        OP_TIMEOUT, 'GET /health');
    return res.json();
}

/** Polls /health until it shows nothing left (or the deadline); returns the last answer. */
async function settle(url) {
    const deadline = Date.now() + SETTLE_TIMEOUT;
    let last;
    for (;;) {
        last = await health(url);
        const empty = last.connections === 0 && last.groups === 0 && last.users === 0;
        if (empty || Date.now() > deadline) return last;
        await delay(250);
    }
}

/** The server's resident size in KiB, from /proc/<pid>/status. */
function residentKiB(pid) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
    return Number(match[1]);
}

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
