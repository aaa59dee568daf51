// Shared helpers for the browser tests: Debian's Chromium driven through playwright-core (no
// browser download), one fresh profile per browser, and the example server binaries.
//
//   CHROMIUM_PATH   the browser (default /usr/bin/chromium)
//   <NAME>_BIN      an example server binary, e.g. DASHBOARD_BIN (default
//                   ../../target/release/<name> relative to examples/js)

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join as joinPath, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { withTimeout } from '../interop/server.mjs';

const JS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];
export const WAIT = 5_000; // every browser wait

/** An example binary: $<NAME>_BIN or examples/js/../../target/release/<name>. */
export function exampleBin(name) {
    const fromEnv = process.env[`${name.toUpperCase()}_BIN`];
    return fromEnv ? resolve(fromEnv) : resolve(JS_DIR, '../../target/release', name);
}

/** One browser (own fresh profile) with one page, plus what the page did. */
export async function openBrowser(name) {
    const userDataDir = await mkdtemp(joinPath(tmpdir(), `hub-browser-${name}-`));
    const context = await withTimeout(chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1100, height: 800 },
        timeout: 20_000,
    }), 25_000, `Chromium for ${name}`);
    context.setDefaultTimeout(WAIT);
    const page = context.pages()[0] ?? await context.newPage();
    const record = { name, userDataDir, context, page, requests: [], webSockets: [], pageErrors: [], consoleErrors: [] };
    page.on('request', (req) => record.requests.push(req.url()));
    page.on('websocket', (ws) => record.webSockets.push(ws.url()));
    page.on('pageerror', (err) => record.pageErrors.push(String(err)));
    page.on('console', (msg) => { if (msg.type() === 'error') record.consoleErrors.push(msg.text()); });
    return record;
}

export async function closeBrowser(b) {
    if (!b) return;
    await withTimeout(b.context.close(), 10_000, `closing ${b.name}'s browser`).catch(() => {});
    await rm(b.userDataDir, { recursive: true, force: true }).catch(() => {});
}

/** Loads `url` and waits for the page's `#status` to say "connected". */
export async function openPage(b, url) {
    const res = await b.page.goto(url, { waitUntil: 'load', timeout: WAIT });
    assert.equal(res.status(), 200);
    await waitForText(b.page, '#status', 'connected');
}

/** Waits until `selector`'s trimmed text is `text`. */
export async function waitForText(page, selector, text, timeout = WAIT) {
    try {
        await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent.trim() === t, [selector, text], { timeout });
    } catch (e) {
        assert.equal(await page.textContent(selector).then((t) => t?.trim()).catch(() => null), text, e.message);
        throw e;
    }
}

/** A number from an element's data attribute (`attr` in dataset form, e.g. "lastSeq"). */
export async function dataNumber(page, selector, attr) {
    return page.$eval(selector, (el, a) => Number(el.dataset[a]), attr);
}

/** Waits until `selector`'s `data-<attr>` is at least `min`; returns it. */
export async function waitForData(page, selector, attr, min, timeout = WAIT) {
    await page.waitForFunction(
        ([s, a, m]) => Number(document.querySelector(s)?.dataset[a]) >= m,
        [selector, attr, min], { timeout });
    return dataNumber(page, selector, attr);
}

/**
 * Asserts the browser only talked to the server (its own files and the hub's paths over http/ws)
 * and saw no page or console errors.
 */
export function assertOnlyOwnRequests(b, serverUrl, { hubPath, files }) {
    const origin = new URL(serverUrl);
    const allowed = new Set(files);
    for (const url of [...b.requests, ...b.webSockets]) {
        const u = new URL(url);
        assert.equal(u.host, origin.host, `request to another host: ${url}`);
        assert.ok(['http:', 'ws:'].includes(u.protocol), `unexpected scheme: ${url}`);
        const isHub = u.pathname === hubPath || u.pathname === `${hubPath}/negotiate`;
        assert.ok(isHub || allowed.has(u.pathname), `unexpected request: ${url}`);
    }
    assert.deepEqual(b.pageErrors, [], `${b.name}: page errors`);
    assert.deepEqual(b.consoleErrors, [], `${b.name}: console errors`);
}
