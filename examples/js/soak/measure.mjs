// Shared by the soak tests: run the workload process, read /health until the server has
// forgotten everything, read a server's resident size.
//
// Not a test file itself (node --test only runs *.test.mjs).

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { withTimeout, delay, OP_TIMEOUT } from '../interop/server.mjs';

const run = promisify(execFile);

/** How long a server gets to forget every connection, group and user after the workload. */
export const SETTLE_TIMEOUT = 30_000;
/** Allowed growth of the resident size over its value after the warm-up. */
export const RSS_TOLERANCE = 0.2;

const WORKLOAD = join(dirname(fileURLToPath(import.meta.url)), 'workload.mjs');

/**
 * Runs the workload in its own Node process (see workload.mjs: the official client lets promise
 * chains reject when a connection ends under them, which node:test would count against the test)
 * and returns its report.
 */
export async function workload(url, seconds) {
    const { stdout } = await run(process.execPath, [WORKLOAD, url, String(seconds)], {
        timeout: (seconds + 120) * 1000,
        maxBuffer: 16 * 1024 * 1024,
        env: process.env,
    });
    const last = stdout.trim().split('\n').pop();
    return JSON.parse(last);
}

export async function health(url) {
    const res = await withTimeout(fetch(`${url}/health`, { signal: AbortSignal.timeout(OP_TIMEOUT) }),
        OP_TIMEOUT, 'GET /health');
    return res.json();
}

/** Polls /health until it shows nothing left (or the deadline); returns the last answer. */
export async function settle(url) {
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
export function residentKiB(pid) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
    return Number(match[1]);
}
