// Helpers for the scale-out suites: a private redis-server on a free loopback port, several
// `interop` processes joined to it with `--redis`, and official-client connections spread across
// them.
//
// Not a test file itself (node --test only runs *.test.mjs here).
//
// Environment: REDIS_SERVER (default `redis-server` on PATH), INTEROP_BIN (see ../interop/server.mjs),
// HUB_TEST_LOG=1 to see the servers' stderr and redis-server's log.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';

import {
    buildConnection, startConnection, stopConnection, startServer, interopBin, invoke, withTimeout, delay,
} from '../interop/server.mjs';

export { invoke, withTimeout, delay, stopConnection };

const VERBOSE = !!process.env.HUB_TEST_LOG;

/** Every child this module started that may still run: killed if the test process exits early. */
const children = new Set();
process.once('exit', () => {
    for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
});

function track(child) {
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
}

/** The warning the Redis backplane logs for each message it could not publish. */
export const PUBLISH_FAILED = 'could not publish to Redis';

/** A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). */
export function freePort() {
    return new Promise((resolvePort, reject) => {
        const server = net.createServer();
        server.unref();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            server.close(() => resolvePort(port));
        });
    });
}

/** Resolves once `redis-server` on 127.0.0.1:port answers PING with +PONG (one attempt). */
function ping(port) {
    return new Promise((resolvePing, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        let reply = '';
        socket.setTimeout(500, () => socket.destroy(new Error('PING timed out')));
        socket.once('error', reject);
        socket.on('connect', () => socket.write('PING\r\n'));
        socket.on('data', (d) => {
            reply += d;
            if (reply.includes('\r\n')) {
                socket.end();
                if (reply.startsWith('+PONG')) resolvePing(); else reject(new Error(`PING answered ${reply.trim()}`));
            }
        });
    });
}

/**
 * A redis-server child on 127.0.0.1:port (no persistence). `start()` (re)spawns it and waits until it
 * answers PING; `kill(signal)` ends it and waits for the exit; both bounded in time.
 */
export class Redis {
    constructor(port) {
        this.port = port;
        this.url = `redis://127.0.0.1:${port}`;
        this.bin = process.env.REDIS_SERVER || 'redis-server';
        this.child = null;
        this.exited = null;
        this.log = '';
    }

    async start() {
        if (this.child) throw new Error('redis-server already running');
        const child = track(spawn(this.bin, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
            stdio: ['ignore', 'pipe', 'pipe'],
        }));
        this.child = child;
        this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
        const collect = (chunk) => {
            if (VERBOSE) process.stderr.write(`[redis-server] ${chunk}`);
            this.log = (this.log + chunk).slice(-4000);
        };
        child.stdout.setEncoding('utf8').on('data', collect);
        child.stderr.setEncoding('utf8').on('data', collect);
        let spawnError = null;
        child.once('error', (e) => { spawnError = e; });
        const deadline = Date.now() + 10_000;
        for (;;) {
            if (spawnError) {
                this.child = null;
                throw new Error(`cannot run ${this.bin} (set REDIS_SERVER or install redis-server): ${spawnError.message}`);
            }
            if (child.exitCode !== null || child.signalCode !== null) {
                this.child = null;
                throw new Error(`redis-server exited at start (code ${child.exitCode}):\n${this.log}`);
            }
            try {
                await ping(this.port);
                return this;
            } catch {
                if (Date.now() > deadline) {
                    await this.kill('SIGKILL');
                    throw new Error(`redis-server did not answer PING on port ${this.port} within 10 s:\n${this.log}`);
                }
                await delay(20);
            }
        }
    }

    async kill(signal = 'SIGTERM') {
        const child = this.child;
        if (!child) return;
        this.child = null;
        if (child.exitCode === null && child.signalCode === null) {
            child.kill(signal);
            try {
                await withTimeout(this.exited, 5_000, `redis-server to exit after ${signal}`);
            } catch {
                child.kill('SIGKILL');
                await withTimeout(this.exited, 2_000, 'redis-server to exit after SIGKILL').catch(() => {});
            }
        }
    }
}

/**
 * One `interop --redis URL` process. Besides what startServer returns, keeps a count of the
 * "could not publish to Redis" warnings it printed on stderr (the backplane logs the 1st, 2nd,
 * 4th, 8th... failure of an outage) and reads the exact count from its /metrics.
 */
async function startNode(index, redisUrl, extraArgs = []) {
    const name = `interop#${index}`;
    const server = await startServer(interopBin(), ['--redis', redisUrl, ...extraArgs], { name });
    track(server.child);
    const node = { index, name, url: server.url, server, child: server.child, publishFailures: 0, stderr: '' };
    // A second reader of the same pipe (startServer keeps only a short tail), line by line.
    createInterface({ input: server.child.stderr }).on('line', (line) => {
        if (line.includes(PUBLISH_FAILED)) node.publishFailures += 1;
        node.stderr = (node.stderr + line + '\n').slice(-20_000);
    });
    node.alive = () => server.child.exitCode === null && server.child.signalCode === null;
    /** hub_backplane_failed_publishes_total from the node's Prometheus endpoint. */
    node.failedPublishes = async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('hub_backplane_failed_publishes_total{'));
        return line ? Number(line.split(' ').pop()) : 0;
    };
    node.exitStatus = () => ({ code: server.child.exitCode, signal: server.child.signalCode });
    return node;
}

/**
 * Starts a redis-server and `count` interop processes on it (each with `extraArgs` too). Returns a cluster:
 *   redis                 the Redis child (see Redis)
 *   nodes[i]              { url, child, alive(), publishFailures (warnings logged),
 *                         failedPublishes() (the counter), stderr, ... }
 *   connect(i, user, opts)  an official-client connection to nodes[i] at /broadcast?user=USER,
 *                         started, tracked, with `.inbox` (every Receive message in order),
 *                         `.arrivals` (Date.now() of each), `.node` (i) and `.user`; opts as
 *                         buildConnection in ../interop/server.mjs (default WebSockets/json)
 *   close()               stops every connection, SIGTERMs the servers, kills redis-server
 */
export async function startCluster(count = 3, extraArgs = []) {
    const redis = new Redis(await freePort());
    const cluster = { redis, nodes: [], connections: new Set() };
    cluster.close = async () => {
        await Promise.all([...cluster.connections].map(stopConnection));
        cluster.connections.clear();
        await Promise.all(cluster.nodes.map((n) => n.server.stop()));
        await redis.kill('SIGKILL');
    };
    try {
        await redis.start();
        const started = await Promise.allSettled(
            Array.from({ length: count }, (_, i) => startNode(i, redis.url, extraArgs)));
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
