// Shared helpers for the interop suites: start an example server binary, wait with timeouts,
// and build official-client connections for a transport/protocol combination.
//
// Not a test file itself (node --test only runs *.test.mjs here).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

/** examples/js */
export const JS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Set HUB_TEST_LOG=1 to see the server's stderr and the client's warnings. */
const VERBOSE = !!process.env.HUB_TEST_LOG;

/** Milliseconds allowed for a server to print its `listening on` line. */
export const SERVER_START_TIMEOUT = 10_000;
/** Default timeout for a single client operation (start, invoke, waiting for a callback). */
export const OP_TIMEOUT = 5_000;

export { signalR };

/**
 * The `ws` package the official client uses in Node (a dependency of @microsoft/signalr),
 * resolved from the client's own location so we add no dependency of our own.
 */
export const WebSocket = createRequire(createRequire(import.meta.url).resolve('@microsoft/signalr'))('ws');

/**
 * Races `promise` against a timer; rejects with `Timed out after <ms> ms waiting for <what>`.
 * The timer is always cleared so it never keeps the process alive.
 */
export function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms` milliseconds. */
export function delay(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

/** Polls `predicate` every 10 ms until it returns truthy; rejects after `ms`. */
export async function waitUntil(predicate, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
        const v = predicate();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
        await delay(10);
    }
}

/**
 * Starts `bin --addr 127.0.0.1:0 [extraArgs]` (no `--addr` of ours when extraArgs has one), waits for the stdout line containing
 * `listening on http://HOST:PORT` and returns `{ url, child, stop() }` where url is e.g.
 * `http://127.0.0.1:41234` (no trailing slash).
 */
export async function startServer(bin, extraArgs = [], { name = bin } = {}) {
    if (!existsSync(bin)) {
        throw new Error(`server binary not found: ${bin} (build it in the workspace root with ` +
            `\`cargo build --release -p hub-examples --bins\`, or set INTEROP_BIN / CHAT_BIN)`);
    }
    const addr = extraArgs.includes('--addr') ? [] : ['--addr', '127.0.0.1:0'];
    const child = spawn(bin, [...addr, ...extraArgs], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, RUST_BACKTRACE: process.env.RUST_BACKTRACE ?? '1' },
    });

    // Keep the tail of stderr for error reports; always drain both pipes so the server never blocks.
    let stderrTail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
        if (VERBOSE) process.stderr.write(`[${name}] ${chunk}`);
        stderrTail = (stderrTail + chunk).slice(-4000);
    });

    const exited = new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));

    const lines = createInterface({ input: child.stdout });
    const listening = new Promise((resolveUrl, reject) => {
        lines.on('line', (line) => {
            if (VERBOSE) process.stderr.write(`[${name} stdout] ${line}\n`);
            const m = /listening on (https?:\/\/[^\s/]+)/.exec(line);
            if (m) resolveUrl(m[1].replace(/[.,;)]+$/, ''));
        });
        child.once('error', reject);
        exited.then(({ code, signal }) =>
            reject(new Error(`${name} exited (code ${code}, signal ${signal}) before listening. stderr:\n${stderrTail}`)));
    });

    let url;
    try {
        url = await withTimeout(listening, SERVER_START_TIMEOUT, `${name} to print "listening on http://..."`);
    } catch (e) {
        child.kill('SIGKILL');
        throw new Error(`${e.message}\nstderr tail:\n${stderrTail}`);
    }

    let stopped = null;
    const stop = () => {
        stopped ??= (async () => {
            if (child.exitCode === null && child.signalCode === null) {
                child.kill('SIGTERM');
                try {
                    await withTimeout(exited, 5_000, `${name} to exit after SIGTERM`);
                } catch {
                    child.kill('SIGKILL');
                    await withTimeout(exited, 2_000, `${name} to exit after SIGKILL`).catch(() => {});
                }
            }
            lines.close();
        })();
        return stopped;
    };
    return { url, child, stop, stderrTail: () => stderrTail };
}

/** The interop example binary: $INTEROP_BIN or examples/js/../../target/release/interop. */
export function interopBin() {
    return process.env.INTEROP_BIN ? resolve(process.env.INTEROP_BIN) : resolve(JS_DIR, '../../target/release/interop');
}

/** The chat example binary: $CHAT_BIN or examples/js/../../target/release/chat. */
export function chatBin() {
    return process.env.CHAT_BIN ? resolve(process.env.CHAT_BIN) : resolve(JS_DIR, '../../target/release/chat');
}

/**
 * Transport/protocol combinations the suites run against: every transport with JSON, and MessagePack over
 * the transports that carry binary (Server-Sent Events is text only).
 */
export const MATRIX = [
    { transport: 'WebSockets', protocol: 'json' },
    { transport: 'WebSockets', protocol: 'messagepack' },
    { transport: 'ServerSentEvents', protocol: 'json' },
    { transport: 'LongPolling', protocol: 'json' },
    { transport: 'LongPolling', protocol: 'messagepack' },
];

export function comboName({ transport, protocol }) {
    return `${transport}/${protocol}`;
}

/**
 * A logger for the official client that records messages at Warning or above (so tests can assert
 * that nothing went wrong) and prints them unless `quiet` (used where an error is the expected outcome).
 */
export class CapturingLogger {
    constructor({ quiet = false, minLevel = signalR.LogLevel.Warning } = {}) {
        this.quiet = quiet && !VERBOSE;
        this.minLevel = VERBOSE ? signalR.LogLevel.Debug : minLevel;
        this.entries = [];
    }

    log(level, message) {
        if (level >= signalR.LogLevel.Warning) this.entries.push({ level, message });
        if (level >= this.minLevel && !this.quiet) {
            const tag = signalR.LogLevel[level] ?? level;
            console.error(`[signalr ${tag}] ${message}`);
        }
    }

    errors() {
        return this.entries.filter((e) => e.level >= signalR.LogLevel.Error);
    }
}

/**
 * Builds (does not start) a HubConnection to `baseUrl + path`.
 * opts: transport ('WebSockets' | 'ServerSentEvents' | 'LongPolling' | null for the client's default choice),
 *       protocol ('json' | 'messagepack'), skipNegotiation, headers, quiet (don't print expected errors),
 *       automaticReconnect, httpOptions (merged into withUrl's options).
 * The returned connection carries `.logger` (a CapturingLogger).
 */
export function buildConnection(baseUrl, path, opts = {}) {
    const {
        transport = 'WebSockets',
        protocol = 'json',
        skipNegotiation = false,
        headers,
        quiet = false,
        automaticReconnect = false,
        httpOptions = {},
    } = opts;
    const logger = new CapturingLogger({ quiet });
    const options = { ...httpOptions };
    if (transport) options.transport = signalR.HttpTransportType[transport];
    if (skipNegotiation) options.skipNegotiation = true;
    if (headers) options.headers = headers;

    let builder = new signalR.HubConnectionBuilder()
        .withUrl(baseUrl + path, options)
        .configureLogging(logger);
    if (protocol === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol());
    else if (protocol !== 'json') throw new Error(`unknown protocol ${protocol}`);
    if (automaticReconnect) builder = builder.withAutomaticReconnect();

    const connection = builder.build();
    connection.logger = logger;
    return connection;
}

/** Starts a connection with a timeout. */
export async function startConnection(connection, ms = OP_TIMEOUT) {
    await withTimeout(connection.start(), ms, 'HubConnection.start()');
    return connection;
}

/** Invoke with a timeout. */
export function invoke(connection, method, ...args) {
    return withTimeout(connection.invoke(method, ...args), OP_TIMEOUT, `invoke('${method}')`);
}

/**
 * Resolves with the argument list of the next call of client method `method` on `connection`
 * (registers the handler immediately, so call this before triggering the call).
 */
export function nextCall(connection, method, ms = OP_TIMEOUT) {
    let handler;
    const p = new Promise((res) => {
        handler = (...args) => res(args);
        connection.on(method, handler);
    });
    return withTimeout(p, ms, `client method '${method}' to be called`).finally(() => connection.off(method, handler));
}

/** Resolves with the error passed to onclose (undefined for a clean close). */
export function closed(connection) {
    return new Promise((res) => connection.onclose((err) => res(err)));
}

/** Stops a connection, tolerating failures and bounded in time. */
export async function stopConnection(connection) {
    try {
        await withTimeout(connection.stop(), 3_000, 'HubConnection.stop()');
    } catch {
        // already failed / closed; nothing to clean up
    }
}

/** `--host $INTEROP_HOST` when set (`warp` or `axum`): the suite runs against either host. */
export function hostArgs() {
    return process.env.INTEROP_HOST ? ['--host', process.env.INTEROP_HOST] : [];
}

/**
 * Starts the interop server and returns a context:
 *   url            base URL, e.g. http://127.0.0.1:41234
 *   connect(path, opts)   build + start a connection (tracked, stopped by close())
 *   build(path, opts)     build only (tracked)
 *   close()        stop every tracked connection, then SIGTERM the server
 */
export async function startInterop(extraArgs = []) {
    const server = await startServer(interopBin(), [...hostArgs(), ...extraArgs], { name: 'interop' });
    const connections = new Set();
    const ctx = {
        url: server.url,
        server,
        build(path, opts) {
            const c = buildConnection(server.url, path, opts);
            connections.add(c);
            return c;
        },
        async connect(path, opts) {
            return startConnection(ctx.build(path, opts));
        },
        async close() {
            await Promise.all([...connections].map(stopConnection));
            connections.clear();
            await server.stop();
        },
    };
    return ctx;
}
