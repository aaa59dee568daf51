// The axum example (`axum_app`): REST routes and a hub in one axum Router, sharing one state.
// A note added through REST reaches hub clients on every transport; the hub's List sees what
// REST added and REST sees what the hub added; SIGTERM closes hub connections with a Close
// message before the process exits.

import { it, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';

import {
    JS_DIR, MATRIX, comboName, startServer, buildConnection, startConnection, stopConnection,
    invoke, nextCall, closed, withTimeout, OP_TIMEOUT,
} from '../interop/server.mjs';

const bin = process.env.AXUM_APP_BIN
    ? resolve(process.env.AXUM_APP_BIN)
    : resolve(JS_DIR, '../../target/release/axum_app');

let server;

before(async () => {
    server = await startServer(bin, [], { name: 'axum_app' });
}, { timeout: 15_000 });

after(async () => {
    await server?.stop();
}, { timeout: 10_000 });

function rest(path, init) {
    return withTimeout(fetch(`${server.url}${path}`, init), OP_TIMEOUT, `${init?.method ?? 'GET'} ${path}`);
}

function post(text) {
    return rest('/api/notes', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
    });
}

describe('REST and the hub share one state', () => {
    for (const combo of MATRIX) {
        it(`a note POSTed to REST reaches a hub client (${comboName(combo)})`, async () => {
            const connection = await startConnection(buildConnection(server.url, '/hubs/notes', combo));
            try {
                const pushed = nextCall(connection, 'NoteAdded');
                const res = await post(`from REST over ${comboName(combo)}`);
                assert.equal(res.status, 201);
                const created = await res.json();
                const [note] = await pushed;
                assert.deepEqual(note, created);
                const listed = await invoke(connection, 'List');
                assert.ok(listed.some((n) => n.id === created.id), 'List sees the REST note');
            } finally {
                await stopConnection(connection);
            }
        });
    }

    it('a note added through the hub is listed by REST, and removal is pushed', async () => {
        const connection = await startConnection(buildConnection(server.url, '/hubs/notes'));
        try {
            const note = await invoke(connection, 'Add', 'from the hub');
            const listed = await (await rest('/api/notes')).json();
            assert.ok(listed.some((n) => n.id === note.id && n.text === 'from the hub'));
            const removed = nextCall(connection, 'NoteRemoved');
            assert.equal((await rest(`/api/notes/${note.id}`, { method: 'DELETE' })).status, 204);
            assert.deepEqual(await removed, [note.id]);
            assert.equal((await rest(`/api/notes/${note.id}`, { method: 'DELETE' })).status, 404);
        } finally {
            await stopConnection(connection);
        }
    });

    it('bad input gets a clear error from both', async () => {
        const res = await post('');
        assert.equal(res.status, 400);
        assert.equal(await res.text(), 'a note has 1 to 500 characters');
        const connection = await startConnection(buildConnection(server.url, '/hubs/notes', { quiet: true }));
        try {
            await assert.rejects(invoke(connection, 'Add', ''), /a note has 1 to 500 characters/);
        } finally {
            await stopConnection(connection);
        }
    });
});

it('SIGTERM says goodbye to hub connections, then the process exits', async () => {
    const own = await startServer(bin, [], { name: 'axum_app (stopped)' });
    const connection = await startConnection(buildConnection(own.url, '/hubs/notes'));
    const ended = closed(connection);
    const health = await (await fetch(`${own.url}/health`)).json();
    assert.equal(health.connections, 1);
    own.child.kill('SIGTERM');
    const error = await withTimeout(ended, OP_TIMEOUT, 'the connection to close');
    // A Close message without an error is a clean close for the client; a socket that just
    // died (no goodbye) would close with an error (status 1006).
    assert.equal(error, undefined, `a clean close, got ${error}`);
    const exit = await withTimeout(new Promise((r) => own.child.once('exit', (code) => r(code))), OP_TIMEOUT, 'exit');
    assert.equal(exit, 0);
});
