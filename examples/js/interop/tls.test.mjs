// TLS served by the hub itself: the official client over https:// and wss:// against a
// self-signed certificate this test creates (openssl), trusted through NODE_EXTRA_CA_CERTS in a
// child Node process (Node reads that variable only at start-up).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, interopBin, withTimeout, JS_DIR } from './server.mjs';

const CLIENT = `
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
const base = process.argv[2];
const results = [];
for (const [transport, protocol] of [['WebSockets','json'],['WebSockets','messagepack'],['ServerSentEvents','json'],['LongPolling','json'],['LongPolling','messagepack']]) {
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(base + '/testhub', { transport: signalR.HttpTransportType[transport] })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  await connection.start();
  const echo = await connection.invoke('Echo', 'secure ' + transport);
  const name = await connection.invoke('GetActiveTransportName');
  await connection.stop();
  results.push({ transport, protocol, echo, name });
}
console.log(JSON.stringify(results));
`;

describe('TLS (https and wss)', () => {
    let dir;
    let server;

    before(async () => {
        dir = mkdtempSync(join(tmpdir(), 'hub-tls-'));
        const made = spawnSync('openssl', [
            'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
            '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
            '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        ], { encoding: 'utf8' });
        assert.equal(made.status, 0, `openssl: ${made.stderr}`);
        writeFileSync(join(JS_DIR, '.tls-client.tmp.mjs'), CLIENT);
        server = await startServer(interopBin(), ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    });

    after(async () => {
        await server?.stop();
        rmSync(join(JS_DIR, '.tls-client.tmp.mjs'), { force: true });
        if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('the server announces https', () => {
        assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    });

    it('the official client works on every transport and protocol over TLS', async () => {
        const child = spawn(process.execPath, [join(JS_DIR, '.tls-client.tmp.mjs'), server.url], {
            cwd: JS_DIR,
            env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => { out += d; });
        child.stderr.on('data', (d) => { err += d; });
        const code = await withTimeout(new Promise((res) => child.on('exit', res)), 30_000, 'TLS client');
        assert.equal(code, 0, `client failed: ${err}`);
        const results = JSON.parse(out.trim().split('\n').pop());
        assert.equal(results.length, 5);
        for (const r of results) {
            assert.equal(r.echo, 'secure ' + r.transport);
            assert.equal(r.name, r.transport);
        }
    });

    it('a plain-HTTP request to the TLS port gets no answer', async () => {
        const plain = server.url.replace('https://', 'http://');
        await assert.rejects(withTimeout(fetch(plain + '/testhub/negotiate?negotiateVersion=1', { method: 'POST' }), 5_000, 'plain fetch'));
    });
});
