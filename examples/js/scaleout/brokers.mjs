// The brokers the scale-out suites run on: a private redis-server, PostgreSQL cluster or nats-server
// on a free loopback port, killed and started again by the fault tests, torn down at the end.
//
// Which one: SCALEOUT_BACKPLANE=redis|postgres|nats (default redis); `npm run test:scaleout:postgres`
// etc. set it. Binaries: REDIS_SERVER (default `redis-server`), PG_BIN (the directory with initdb and
// pg_ctl; default the newest /usr/lib/postgresql/<version>/bin), NATS_SERVER (default `nats-server`,
// also looked for in /usr/sbin). scripts/test-all installs them.
//
// Not a test file itself (node --test only runs *.test.mjs here).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { withTimeout, delay } from '../interop/server.mjs';

const VERBOSE = !!process.env.HUB_TEST_LOG;

/** Every child this module started that may still run: killed if the test process exits early. */
const children = new Set();
/** Every PostgreSQL cluster directory: stopped and removed if the test process exits early. */
const clusters = new Set();
process.once('exit', () => {
    for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    for (const cluster of clusters) cluster.stopNow();
});

export function track(child) {
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
}

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

/** Resolves once something answers on 127.0.0.1:port with a first line passing `ok` (one attempt). */
function probe(port, greeting, ok) {
    return new Promise((resolveProbe, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        let reply = '';
        socket.setTimeout(500, () => socket.destroy(new Error('probe timed out')));
        socket.once('error', reject);
        socket.on('connect', () => { if (greeting) socket.write(greeting); });
        socket.on('data', (d) => {
            reply += d;
            if (reply.includes('\r\n')) {
                socket.destroy();
                if (ok(reply)) resolveProbe(); else reject(new Error(`answered ${reply.trim()}`));
            }
        });
    });
}

/** Retries `attempt` every 20 ms until it resolves, for at most `ms`. */
async function retry(attempt, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
        try {
            return await attempt();
        } catch (e) {
            if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms: ${e.message}`);
            await delay(20);
        }
    }
}

/** A broker process we spawn and kill ourselves (redis-server, nats-server). */
class SpawnedBroker {
    constructor(name, bin, args, port, ready) {
        Object.assign(this, { name, bin, args, port, ready, child: null, exited: null, log: '' });
    }

    async start() {
        if (this.child) throw new Error(`${this.name} already running`);
        const child = track(spawn(this.bin, this.args, { stdio: ['ignore', 'pipe', 'pipe'] }));
        this.child = child;
        this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
        const collect = (chunk) => {
            if (VERBOSE) process.stderr.write(`[${this.name}] ${chunk}`);
            this.log = (this.log + chunk).slice(-4000);
        };
        child.stdout.setEncoding('utf8').on('data', collect);
        child.stderr.setEncoding('utf8').on('data', collect);
        let spawnError = null;
        child.once('error', (e) => { spawnError = e; });
        await retry(async () => {
            if (spawnError) throw new Error(`cannot run ${this.bin}: ${spawnError.message}`);
            if (child.exitCode !== null) throw new Error(`${this.name} exited at start:\n${this.log}`);
            await this.ready(this.port);
        }, 10_000, `${this.name} to answer on port ${this.port}`).catch(async (e) => {
            await this.kill('SIGKILL');
            throw e;
        });
        return this;
    }

    async kill(signal = 'SIGTERM') {
        const child = this.child;
        if (!child) return;
        this.child = null;
        if (child.exitCode === null && child.signalCode === null) {
            child.kill(signal);
            try {
                await withTimeout(this.exited, 5_000, `${this.name} to exit after ${signal}`);
            } catch {
                child.kill('SIGKILL');
                await withTimeout(this.exited, 2_000, `${this.name} to exit after SIGKILL`).catch(() => {});
            }
        }
    }

    async close() {
        await this.kill('SIGKILL');
    }
}

export class Redis extends SpawnedBroker {
    constructor(port) {
        super('redis-server', process.env.REDIS_SERVER || 'redis-server',
            ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], port,
            (p) => probe(p, 'PING\r\n', (reply) => reply.startsWith('+PONG')));
        this.url = `redis://127.0.0.1:${port}`;
    }
}

export class Nats extends SpawnedBroker {
    constructor(port) {
        const bin = process.env.NATS_SERVER || (onPath('nats-server') ? 'nats-server' : '/usr/sbin/nats-server');
        // JetStream on (the NATS presence and history stores use it), its store kept across a
        // kill and restart, removed by close().
        const store = mkdtempSync(path.join(os.tmpdir(), 'hub-scaleout-nats-'));
        super('nats-server', bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], port,
            (p) => probe(p, null, (reply) => reply.startsWith('INFO ')));
        this.store = store;
        this.url = `nats://127.0.0.1:${port}`;
    }

    async close() {
        await super.close();
        rmSync(this.store, { recursive: true, force: true });
    }
}

function onPath(name) {
    return (process.env.PATH || '').split(':').some((dir) => dir && existsSync(path.join(dir, name)));
}

function postgresBin() {
    if (process.env.PG_BIN) return process.env.PG_BIN;
    const root = '/usr/lib/postgresql';
    const versions = existsSync(root)
        ? readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(path.join(root, v, 'bin', 'initdb')))
        : [];
    if (!versions.length) throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb; set PG_BIN)');
    versions.sort((a, b) => Number(a) - Number(b));
    return path.join(root, versions.at(-1), 'bin');
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL program (as the postgres user when we are root: initdb and postgres refuse root). */
function pg(bin, program, args) {
    const [file, argv] = asRoot
        ? ['runuser', ['-u', 'postgres', '--', path.join(bin, program), ...args]]
        : [path.join(bin, program), args];
    return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

/**
 * A private PostgreSQL cluster (trust authentication, fsync off). `kill()` stops it at once
 * (`pg_ctl stop -m immediate`: every connection drops, as with a crash), `start()` starts it again on
 * the same port.
 */
export class Postgres {
    constructor(port) {
        this.name = 'postgres';
        this.port = port;
        this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
        this.bin = postgresBin();
        this.dir = null;
        this.running = false;
    }

    initialize() {
        this.dir = mkdtempSync(path.join(os.tmpdir(), 'hub-scaleout-pg-'));
        if (asRoot) execFileSync('chown', ['postgres:postgres', this.dir]);
        pg(this.bin, 'initdb', ['-D', path.join(this.dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
        clusters.add(this);
    }

    async start() {
        if (this.running) throw new Error('postgres already running');
        if (!this.dir) this.initialize();
        const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
        try {
            pg(this.bin, 'pg_ctl', ['-D', path.join(this.dir, 'data'), '-w', '-t', '30', '-o', options,
                '-l', path.join(this.dir, 'log'), 'start']);
        } catch (e) {
            throw new Error(`pg_ctl start failed: ${e.stderr || e.message}`);
        }
        this.running = true;
        return this;
    }

    stopNow() {
        if (!this.running) return;
        this.running = false;
        try {
            pg(this.bin, 'pg_ctl', ['-D', path.join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
        } catch { /* already stopped */ }
    }

    async kill() {
        this.stopNow();
    }

    async close() {
        this.stopNow();
        if (this.dir) rmSync(this.dir, { recursive: true, force: true });
        clusters.delete(this);
        this.dir = null;
    }
}

/** The backplanes the suites can run on: the interop flag and the broker class of each. */
export const BACKPLANES = {
    redis: { flag: '--redis', Broker: Redis, publishFailed: 'could not publish to Redis' },
    postgres: { flag: '--postgres', Broker: Postgres, publishFailed: 'could not publish to PostgreSQL' },
    nats: { flag: '--nats', Broker: Nats, publishFailed: 'could not publish to NATS' },
};

/** The backplane chosen by SCALEOUT_BACKPLANE (default redis). */
export function chosenBackplane() {
    const name = process.env.SCALEOUT_BACKPLANE || 'redis';
    const backplane = BACKPLANES[name];
    if (!backplane) throw new Error(`SCALEOUT_BACKPLANE=${name}: expected one of ${Object.keys(BACKPLANES).join(', ')}`);
    return { name, ...backplane };
}

/** Starts the chosen broker on a free port. */
export async function startBroker() {
    const { Broker } = chosenBackplane();
    const broker = new Broker(await freePort());
    await broker.start();
    return broker;
}
