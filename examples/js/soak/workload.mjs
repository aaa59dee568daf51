// The soak test's workload, as a process of its own: `node soak/workload.mjs URL SECONDS` runs
// rounds of episodes (episodes.mjs) against the server at URL until SECONDS have passed (at least
// one round), then prints its report as one JSON line:
// `{"rounds":N,"runs":N,"failures":{"<episode> <pair>":{"count":N,"last":"..."}},"clientRejections":N}`.
//
// A process of its own because the official client lets internal promise chains reject when a
// connection ends under them (an upload's queued items): here they are counted, not fatal.
//
// SOAK_EPISODES (comma-separated names) narrows the episodes; default all.

import { MATRIX, comboName } from '../interop/server.mjs';
import * as episodes from './episodes.mjs';

/** Episodes run once per transport/protocol pair, in order. */
const PER_COMBO = ['normal', 'panic', 'abandonedUpload', 'cancelledStream', 'clientResultTimeout'];
/** Episodes with their own raw clients (JSON), run once per round alongside the pairs. */
const RAW = ['webSocketDrop', 'statefulGone', 'eventStreamDrop', 'pollDrop', 'slowConsumer'];

const [url, secondsText] = process.argv.slice(2);
if (!url || secondsText === undefined || Number.isNaN(Number(secondsText))) {
    console.error('usage: node soak/workload.mjs URL SECONDS');
    process.exit(2);
}

const enabled = new Set(process.env.SOAK_EPISODES ? process.env.SOAK_EPISODES.split(',') : [...PER_COMBO, ...RAW]);
for (const name of enabled) {
    if (!episodes[name]) {
        console.error(`SOAK_EPISODES: no episode '${name}' (have ${[...PER_COMBO, ...RAW]})`);
        process.exit(2);
    }
}

const report = { rounds: 0, runs: 0, failures: {}, clientRejections: 0 };

process.on('unhandledRejection', (reason) => {
    report.clientRejections += 1;
    if (process.env.HUB_TEST_LOG) console.error(`workload: unhandled rejection in the client: ${reason}`);
});

/** Runs one episode, recording a failure under `label` instead of stopping. */
async function attempt(label, episode) {
    report.runs += 1;
    try {
        await episode();
    } catch (e) {
        const entry = (report.failures[label] ??= { count: 0, last: '' });
        entry.count += 1;
        entry.last = String(e?.message ?? e).split('\n')[0];
    }
}

/** One round: every pair runs its episodes in order, the raw episodes alongside. */
async function round() {
    const lanes = MATRIX.map(async (combo) => {
        for (const name of PER_COMBO.filter((n) => enabled.has(n))) {
            await attempt(`${name} ${comboName(combo)}`, () => episodes[name](url, combo));
        }
    });
    const raw = (async () => {
        for (const name of RAW.filter((n) => enabled.has(n))) {
            await attempt(name, () => episodes[name](url));
        }
    })();
    await Promise.all([...lanes, raw]);
}

const end = Date.now() + Number(secondsText) * 1000;
do {
    await round();
    report.rounds += 1;
} while (Date.now() < end);

console.log(JSON.stringify(report));
// Connections the faults left half-open must not keep this process alive.
process.exit(0);
