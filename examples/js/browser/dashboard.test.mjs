// Browser test of the dashboard example: the page in examples/web/dashboard served by the
// `dashboard` binary (samples pushed every 200 ms here), in headless Chromium. Two pages: each
// streams its own readings; both get the same pushed samples. Then two servers on one
// redis-server (REDIS_SERVER, default on PATH): a page on one gets both servers' samples. See
// chromium.mjs for the rest of the environment (DASHBOARD_BIN, CHROMIUM_PATH). A screenshot goes to /tmp/dashboard-screenshot.png.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

import { startServer } from '../interop/server.mjs';
import { Redis, freePort } from '../scaleout/brokers.mjs';
import {
    WAIT, exampleBin, openBrowser, closeBrowser, openPage, waitForText, dataNumber, waitForData, assertOnlyOwnRequests,
} from './chromium.mjs';

const SCREENSHOT = '/tmp/dashboard-screenshot.png';
const FILES = ['/', '/dashboard.js', '/dashboard.css', '/signalr.min.js'];
const READINGS = '#readings-chart';
const SAMPLES = '#samples-chart';

/** The page's recent-samples rows as seq → load. */
async function recentSamples(page) {
    const rows = await page.$$eval('#recent-samples tr', (trs) => trs.map((tr) => [Number(tr.dataset.seq), Number(tr.dataset.load)]));
    return new Map(rows);
}

/** How many readings arrive in `ms` milliseconds. */
async function readingsIn(page, ms) {
    const before = await dataNumber(page, READINGS, 'count');
    await delay(ms);
    return (await dataNumber(page, READINGS, 'count')) - before;
}

describe('dashboard page in Chromium', { timeout: 120_000 }, () => {
    let server;
    let one;
    let two;

    before(async () => {
        server = await startServer(exampleBin('dashboard'), ['--interval-ms', '200'], { name: 'dashboard' });
        [one, two] = await Promise.all([openBrowser('one'), openBrowser('two')]);
    }, { timeout: 40_000 });

    after(async () => {
        await Promise.all([closeBrowser(one), closeBrowser(two)]);
        await server?.stop();
    }, { timeout: 30_000 });

    it('serves the page and both pages connect', async () => {
        await openPage(one, server.url + '/');
        await openPage(two, server.url + '/');
    });

    it("the server-to-client stream feeds each page's readings chart", async () => {
        for (const b of [one, two]) {
            const count = await waitForData(b.page, READINGS, 'count', 5);
            assert.equal(await b.page.$eval(READINGS, (el) => el.dataset.stream), 'streaming');
            // every reading is a point of the polyline (up to the 60-point window)
            const points = await b.page.$eval(`${READINGS} polyline`, (el) => el.getAttribute('points').trim().split(/\s+/).length);
            const after = await b.page.$eval(READINGS, (el) => ({
                count: Number(el.dataset.count),
                lastSeq: Number(el.dataset.lastSeq),
                shown: Number(document.querySelector('#reading-count').textContent),
            }));
            assert.ok(points >= Math.min(count, 60) && points <= Math.min(after.count, 60), `${points} points for ${count}..${after.count} readings`);
            // the stream's own numbering: 1, 2, 3, ... with nothing lost
            assert.equal(after.lastSeq, after.count);
            assert.equal(after.shown, after.count);
        }
    });

    it('pushed samples reach both pages, the same samples in the same order', async () => {
        await Promise.all([one, two].map((b) => waitForData(b.page, SAMPLES, 'count', 3)));
        const target = (await dataNumber(one.page, SAMPLES, 'lastSeq')) + 3;
        await Promise.all([one, two].map((b) => waitForData(b.page, SAMPLES, 'lastSeq', target)));
        const [a, b] = await Promise.all([recentSamples(one.page), recentSamples(two.page)]);
        const common = [...a.keys()].filter((seq) => b.has(seq));
        assert.ok(common.length >= 3, `samples seen by both pages: ${common}`);
        for (const seq of common) assert.equal(a.get(seq), b.get(seq), `sample ${seq}`);
        const host = new URL(server.url).host;
        for (const p of [one.page, two.page]) {
            assert.deepEqual(await p.$$eval('#recent-samples tr', (trs) => [...new Set(trs.map((tr) => tr.dataset.server))]), [host]);
        }
        for (const page of [a, b]) {
            const seqs = [...page.keys()];
            for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] - 1, `newest first, none missing: ${seqs}`);
        }
        for (const p of [one.page, two.page]) {
            await waitForText(p, '#connections', '2');
            await waitForText(p, '#streams', '2');
            const [shown, count] = await p.$eval(SAMPLES, (el) => [document.querySelector('#sample-count').textContent, el.dataset.count]);
            assert.equal(shown, count);
        }
    });

    it('Pause ends the stream on the server; samples keep coming; Resume starts a new stream', async () => {
        const page = one.page;
        await page.click('#toggle-stream');
        await waitForText(page, '#stream-state', 'paused');
        assert.equal(await page.textContent('#toggle-stream'), 'Resume');
        // the server's count of open streams (in the pushed samples) drops to the other page's
        await waitForText(page, '#streams', '1');
        await waitForText(two.page, '#streams', '1');
        const paused = await dataNumber(page, READINGS, 'count');
        const samples = await dataNumber(page, SAMPLES, 'count');
        await delay(1_000);
        assert.equal(await dataNumber(page, READINGS, 'count'), paused, 'no readings while paused');
        assert.ok(await dataNumber(page, SAMPLES, 'count') >= samples + 2, 'samples keep coming while paused');

        await page.click('#toggle-stream');
        await waitForText(page, '#stream-state', 'streaming');
        await waitForData(page, READINGS, 'count', paused + 3);
        // a new stream numbers its readings from 1 again
        const [lastSeq, count] = await page.$eval(READINGS, (el) => [Number(el.dataset.lastSeq), Number(el.dataset.count)]);
        assert.ok(lastSeq < count, `reading ${lastSeq} of the new stream, ${count} in all`);
        await waitForText(page, '#streams', '2');
    });

    it('the rate selector restarts the stream at the chosen interval', async () => {
        const page = two.page;
        await page.selectOption('#rate', '1000');
        await delay(300); // the old stream's last items
        const slow = await readingsIn(page, 2_000);
        await page.selectOption('#rate', '100');
        await delay(300);
        const fast = await readingsIn(page, 2_000);
        assert.ok(slow <= 3, `1 s interval: ${slow} readings in 2 s`);
        assert.ok(fast >= 8, `100 ms interval: ${fast} readings in 2 s`);
        // replacing the stream did not leave the old one running
        await waitForText(page, '#streams', '2');
    });

    it('the page loaded only its own files and raised no errors', async () => {
        for (const b of [one, two]) assertOnlyOwnRequests(b, server.url, { hubPath: '/dashboard', files: FILES });
        try {
            await one.page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: WAIT });
        } catch (e) {
            console.error(`screenshot failed: ${e.message}`);
        }
    });

    it('closing a page ends its connection and stream: the other page sees the counts drop', async () => {
        await two.page.close();
        await waitForText(one.page, '#connections', '1');
        await waitForText(one.page, '#streams', '1');
    });

    it('the status leaves "connected" when the server goes away', async () => {
        await server.stop();
        await one.page.waitForFunction(
            () => ['reconnecting', 'disconnected'].includes(document.querySelector('#status')?.textContent.trim()),
            null, { timeout: WAIT });
        assert.equal(await one.page.isDisabled('#toggle-stream'), true);
    });
});

describe('dashboard: two servers on one Redis', { timeout: 90_000 }, () => {
    let redis;
    const servers = [];
    let viewer;

    before(async () => {
        redis = await new Redis(await freePort()).start();
        for (let i = 0; i < 2; i++) {
            servers.push(await startServer(exampleBin('dashboard'), ['--interval-ms', '200', '--redis', redis.url], { name: `dashboard#${i}` }));
        }
        viewer = await openBrowser('viewer');
    }, { timeout: 40_000 });

    after(async () => {
        await closeBrowser(viewer);
        await Promise.all(servers.map((s) => s.stop()));
        await redis?.kill();
    }, { timeout: 30_000 });

    it("a page on one server gets every server's samples", async () => {
        await openPage(viewer, servers[0].url + '/');
        const hosts = servers.map((s) => new URL(s.url).host).sort();
        await viewer.page.waitForFunction(
            (want) => JSON.stringify([...new Set([...document.querySelectorAll('#recent-samples tr')].map((tr) => tr.dataset.server))].sort()) === JSON.stringify(want),
            hosts, { timeout: WAIT });
        // the page's connection is on the first server only
        const mine = new URL(servers[0].url).host;
        const rows = await viewer.page.$$eval('#recent-samples tr', (trs) => trs.map((tr) => [tr.dataset.server, tr.dataset.connections]));
        for (const [server, count] of rows) assert.equal(count, server === mine ? '1' : '0', `connections on ${server}`);
        assertOnlyOwnRequests(viewer, servers[0].url, { hubPath: '/dashboard', files: FILES });
    });
});
