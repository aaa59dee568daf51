// The hosting choice (`interop --host warp|axum`): the whole suite runs against either host
// (INTEROP_HOST selects it; scripts/test-all runs both). Here, what only the host decides: the
// extra endpoints answer in any case of their path, ids in paths keep their case, and under axum
// the app's own route `/hello` sits beside the hubs.

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startInterop, withTimeout, OP_TIMEOUT } from './server.mjs';

let ctx;
const axum = process.env.INTEROP_HOST === 'axum';

before(async () => {
    ctx = await startInterop();
}, { timeout: 15_000 });

after(async () => {
    await ctx?.close();
}, { timeout: 10_000 });

function get(path, init) {
    return withTimeout(fetch(`${ctx.url}${path}`, init), OP_TIMEOUT, `${init?.method ?? 'GET'} ${path}`);
}

it('the extra endpoints match their paths in any case', async () => {
    for (const path of ['/generateJwtToken', '/GENERATEJWTTOKEN', '/generatejwttoken']) {
        const res = await get(path);
        assert.equal(res.status, 200, path);
        assert.equal((await res.text()).split('.').length, 3, `${path} answers a JWT`);
    }
    const redirect = await get('/Redirect/negotiate?baseUrl=http%3A%2F%2Fx', { method: 'POST' });
    assert.equal(redirect.status, 200);
    assert.match((await redirect.json()).url, /^http:\/\/x\/testHub\?numRedirects=\d+$/);
    const bad = await get('/BAD-negotiate/negotiate', { method: 'POST' });
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), 'Some response from server');
});

it('/echoredirect keeps the case of the rest of the path and the query', async () => {
    const res = await get('/EchoRedirect/Negotiate?Mixed=Case', { method: 'POST', redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('location'), '/echo/Negotiate?Mixed=Case');
});

it('hub paths match in any case', async () => {
    const res = await get('/TESTHUB/negotiate?negotiateVersion=1', { method: 'POST' });
    assert.equal(res.status, 200);
    assert.ok((await res.json()).connectionToken);
});

it('an unknown client-result id keeps its case in the answer', async () => {
    const res = await get('/clientresult/MiXeD');
    assert.equal(res.status, 200);
    assert.match(await res.text(), /MiXeD/);
});

it('under axum, the app\'s own route /hello answers beside the hubs', { skip: !axum && 'warp host' }, async () => {
    const res = await get('/hello');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello');
});
