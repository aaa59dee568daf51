// The generated TypeScript typings (examples/js/typings, from `interop --emit-typescript`):
// they type-check under `tsc --strict` together with interop/typings-check.ts (whose
// `@ts-expect-error` lines must fail), and, compiled with tsc, they drive the interop server
// through the official client: the proxy calls the wire names, the registration answers the
// hub's client calls and client results, and dispose() removes the handlers.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { JS_DIR, signalR, startInterop, withTimeout, OP_TIMEOUT } from './server.mjs';

const TSC = join(JS_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
const TYPINGS = join(JS_DIR, 'typings');
const MODULES = readdirSync(TYPINGS).filter((f) => f.endsWith('.ts')).map((f) => join(TYPINGS, f));
const TS_OPTIONS = ['--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext'];

function tsc(args) {
    try {
        execFileSync(process.execPath, [TSC, ...args], { cwd: JS_DIR, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
        assert.fail(`tsc ${args.join(' ')} failed:\n${e.stdout}${e.stderr}`);
    }
}

/** Resolves with the items of a server-to-client stream once it completes. */
function collect(stream) {
    return withTimeout(
        new Promise((resolve, reject) => {
            const items = [];
            stream.subscribe({ next: (item) => items.push(item), complete: () => resolve(items), error: reject });
        }),
        OP_TIMEOUT,
        'the stream to complete',
    );
}

describe('generated TypeScript typings', { timeout: 60_000 }, () => {
    it('type-check with tsc --strict, and reject wrong calls', () => {
        assert.deepEqual(
            MODULES.map((m) => m.slice(TYPINGS.length + 1)).sort(),
            ['BroadcastHub.ts', 'HubWithAuthorization.ts', 'TestHub.ts', 'Uncreatable.ts'],
        );
        tsc(['--strict', '--noEmit', ...TS_OPTIONS, ...MODULES, join(JS_DIR, 'interop', 'typings-check.ts')]);
    });

    describe('drive the interop server', () => {
        let ctx;
        let out;
        let TestHub;
        let BroadcastHub;

        before(async () => {
            out = mkdtempSync(join(tmpdir(), 'hub-typings-'));
            tsc(['--strict', ...TS_OPTIONS, '--rootDir', TYPINGS, '--outDir', out, ...MODULES]);
            writeFileSync(join(out, 'package.json'), '{"type":"module"}');
            TestHub = await import(pathToFileURL(join(out, 'TestHub.js')));
            BroadcastHub = await import(pathToFileURL(join(out, 'BroadcastHub.js')));
            ctx = await startInterop();
        }, { timeout: 30_000 });

        after(async () => {
            await ctx?.close();
            if (out) rmSync(out, { recursive: true, force: true });
        });

        /** A started TestHub connection, its proxy, and a receiver recording the client calls. */
        async function testHub(opts = { transport: 'WebSockets', protocol: 'json' }) {
            const connection = await ctx.connect('/testhub', opts);
            const calls = [];
            const receiver = {
                message: (message) => calls.push(['message', message]),
                customObject: (value) => calls.push(['customObject', value]),
                streamCanceled: () => calls.push(['streamCanceled']),
                result: async () => 10,
            };
            const registration = TestHub.registerTestHubClient(connection, receiver);
            return { connection, hub: TestHub.createTestHubProxy(connection), calls, registration };
        }

        async function waitForCall(calls, name) {
            for (let i = 0; i < OP_TIMEOUT / 10; i++) {
                const call = calls.find(([n]) => n === name);
                if (call) return call;
                await new Promise((r) => setTimeout(r, 10));
            }
            assert.fail(`client method ${name} was not called`);
        }

        it('invokes, streams and uploads through the proxy', async () => {
            const { hub } = await testHub();
            assert.equal(await hub.echo('héllo ✓'), 'héllo ✓');
            assert.equal(await hub.divide(7, 2), 3);
            assert.deepEqual(await collect(hub.stream()), ['a', 'b', 'c']);
            assert.deepEqual(await collect(hub.emptyStream()), []);
            await assert.rejects(collect(hub.streamThrowException('boom')), /InvalidOperationException: boom/);
            const subject = new signalR.Subject();
            const concatenated = hub.streamingConcat(subject);
            subject.next('up');
            subject.next('load');
            subject.complete();
            assert.equal(await concatenated, 'upload');
            assert.equal(await hub.getCookie('nope'), null);
        });

        it('calls the registered receiver: client methods, payloads, client results, dispose', async () => {
            const { connection, hub, calls, registration } = await testHub({ transport: 'WebSockets', protocol: 'json', quiet: true });
            await hub.invokeWithString('to the caller');
            assert.deepEqual(await waitForCall(calls, 'message'), ['message', 'to the caller']);
            await hub.sendCustomObject({ Name: 'typed', Value: 42 });
            assert.deepEqual(await waitForCall(calls, 'customObject'), ['customObject', { Name: 'typed', Value: 42 }]);

            const id = await hub.getCallerConnectionId();
            const result = () => fetch(`${ctx.url}/clientresult/${id}`).then((r) => r.text());
            assert.equal(await result(), '10');
            registration.dispose();
            assert.equal(await result(), "Client didn't provide a result.");
            assert.equal(connection.state, 'Connected');
            assert.deepEqual(connection.logger.errors(), []);
        });

        it('carries binary data and date-times as the typings say (MessagePack)', async () => {
            const { hub } = await testHub({ transport: 'WebSockets', protocol: 'messagepack' });
            const sent = await hub.sendComplexObject();
            assert.ok(sent.ByteArray instanceof Uint8Array);
            assert.ok(sent.DateTime instanceof Date);
            const back = await hub.echoComplexObject(sent);
            assert.deepEqual([...back.ByteArray], [1, 2, 3]);
            assert.equal(back.DateTime.toISOString(), '2000-01-01T00:00:00.000Z');
            assert.deepEqual(back.IntArray, [1, 2, 3]);
        });

        it('answers BroadcastHub client results through the registered receiver', async () => {
            const connection = await ctx.connect('/broadcast?user=ts', { transport: 'WebSockets', protocol: 'json' });
            const received = [];
            BroadcastHub.registerBroadcastHubClient(connection, {
                receive: (message) => received.push(message),
                answer: (question) => `answer to ${question}`,
            });
            const hub = BroadcastHub.createBroadcastHubProxy(connection);
            assert.equal(await hub.askCaller('why'), 'answer to why');
            await hub.sendToUser('ts', 'to me');
            for (let i = 0; i < 500 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
            assert.deepEqual(received, ['to me']);
            // `receive` returned a value (push's length): the registration must not hand it to
            // the client as a result the server did not ask for.
            assert.deepEqual(connection.logger.errors(), []);
        });
    });
});
