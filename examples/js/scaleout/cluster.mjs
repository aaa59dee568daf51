// Helpers for the scale-out suites: a private broker on a free loopback port (redis-server,
// PostgreSQL or nats-server: SCALEOUT_BACKPLANE, see brokers.mjs), several `interop` processes
// joined to it with `--redis`, `--postgres` or `--nats`, and official-client connections spread
// across them.
//
// Not a test file itself (node --test only runs *.test.mjs here).
//
// Environment: SCALEOUT_BACKPLANE and the broker binaries (brokers.mjs), INTEROP_BIN (see
// ../interop/server.mjs), HUB_TEST_LOG=1 to see the servers' stderr and the broker's log.

import { createInterface } from 'node:readline';

import {
    buildConnection, startConnection, stopConnection, startServer, interopBin, invoke, withTimeout, delay,
} from '../interop/server.mjs';
import { chosenBackplane, startBroker, track } from './brokers.mjs';

export { invoke, withTimeout, delay, stopConnection };

const backplane = chosenBackplane();

/** The warning the chosen backplane logs for each message it could not publish. */
export const PUBLISH_FAILED = backplane.publishFailed;

/** The chosen backplane's name: redis, postgres or nats. */
export const BACKPLANE = backplane.name;

/**
 * One `interop --redis|--postgres|--nats URL` process. Besides what startServer returns, keeps a
 * count of the "could not publish" warnings it printed on stderr (the backplane logs the 1st, 2nd,
 * 4th, 8th... failure of an outage) and reads the exact counts from its /metrics.
 */
async function startNode(index, brokerUrl, extraArgs = []) {
    const name = `interop#${index}`;
    const server = await startServer(interopBin(), [backplane.flag, brokerUrl, ...extraArgs], { name });
    track(server.child);
    const node = { index, name, url: server.url, server, child: server.child, publishFailures: 0, stderr: '' };
    // A second reader of the same pipe (startServer keeps only a short tail), line by line.
    createInterface({ input: server.child.stderr }).on('line', (line) => {
        if (line.includes(PUBLISH_FAILED)) node.publishFailures += 1;
        node.stderr = (node.stderr + line + '\n').slice(-20_000);
    });
    node.alive = () => server.child.exitCode === null && server.child.signalCode === null;
    /** A hub_backplane_*_total counter from the node's Prometheus endpoint (0 if absent). */
    node.counter = async (name) => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
        return line ? Number(line.split(' ').pop()) : 0;
    };
    node.failedPublishes = () => node.counter('hub_backplane_failed_publishes_total');
    /** Lost listening connections plus messages the broker said it dropped: losses of unknown size. */
    node.gapsAndLosses = async () =>
        (await node.counter('hub_backplane_gaps_total')) + (await node.counter('hub_backplane_lost_messages_total'));
    node.exitStatus = () => ({ code: server.child.exitCode, signal: server.child.signalCode });
    return node;
}

/**
 * Starts the chosen broker (see brokers.mjs) and `count` interop processes on it (each with
 * `extraArgs` too). Returns a cluster:
 *   broker                the broker (start(), kill(signal), url; see brokers.mjs)
 *   nodes[i]              { url, child, alive(), publishFailures (warnings logged),
 *                         failedPublishes() (the counter), stderr, ... }
 *   connect(i, user, opts)  an official-client connection to nodes[i] at /broadcast?user=USER,
 *                         started, tracked, with `.inbox` (every Receive message in order),
 *                         `.arrivals` (Date.now() of each), `.node` (i) and `.user`; opts as
 *                         buildConnection in ../interop/server.mjs (default WebSockets/json)
 *   close()               stops every connection, SIGTERMs the servers, tears the broker down
 */
export async function startCluster(count = 3, extraArgs = []) {
    const cluster = { broker: null, nodes: [], connections: new Set() };
    cluster.close = async () => {
        await Promise.all([...cluster.connections].map(stopConnection));
        cluster.connections.clear();
        await Promise.all(cluster.nodes.map((n) => n.server.stop()));
        await cluster.broker?.close();
    };
    try {
        cluster.broker = await startBroker();
        const broker = cluster.broker;
        const started = await Promise.allSettled(
            Array.from({ length: count }, (_, i) => startNode(i, broker.url, extraArgs)));
        cluster.nodes = started.filter((r) => r.status === 'fulfilled').map((r) => r.value);
        const failed = started.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
    } catch (e) {
        await cluster.close();
        throw e;
    }
    cluster.connect = async (index, user, opts = {}) => {
        const c = buildConnection(cluster.nodes[index].url, `/broadcast?user=${encodeURIComponent(user)}`, opts);
        c.inbox = [];
        c.arrivals = [];
        c.node = index;
        c.user = user;
        c.on('Receive', (m) => {
            c.inbox.push(m);
            c.arrivals.push(Date.now());
        });
        cluster.connections.add(c);
        await startConnection(c, 10_000);
        return c;
    };
    return cluster;
}
