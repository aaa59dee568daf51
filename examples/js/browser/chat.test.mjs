// Browser test of the chat example: the page in examples/web served by the `chat` server binary,
// driven in Debian's Chromium through playwright-core (no browser download).
//
//   CHAT_BIN        the server binary (default ../../target/release/chat relative to examples/js)
//   CHROMIUM_PATH   the browser (default /usr/bin/chromium)
// A screenshot of alice's page is written to /tmp/chat-screenshot.png at the end.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, chatBin } from '../interop/server.mjs';
import { openBrowser, closeBrowser, WAIT } from './chromium.mjs';

const SCREENSHOT = '/tmp/chat-screenshot.png';
const ALLOWED_PATHS = new Set(['/', '/chat.js', '/chat.css', '/signalr.min.js']);

async function waitForStatus(page, status) {
    await page.waitForFunction((s) => document.querySelector('#status')?.textContent.trim() === s, status, { timeout: WAIT });
}

/** Waits until a `#messages` child with `cls` has exactly `text` as its text. */
async function waitForLine(page, cls, text) {
    await page.waitForFunction(
        ([c, t]) => [...document.querySelectorAll(`#messages .${c}`)].some((e) => e.textContent.trim() === t),
        [cls, text], { timeout: WAIT });
}

async function members(page) {
    return page.$$eval('#members li', (lis) => lis.map((li) => li.textContent.trim()));
}

async function waitForMembers(page, expected) {
    const want = [...expected].sort();
    try {
        await page.waitForFunction(
            (w) => JSON.stringify([...document.querySelectorAll('#members li')].map((li) => li.textContent.trim()).sort()) === JSON.stringify(w),
            want, { timeout: WAIT });
    } catch (e) {
        assert.deepEqual((await members(page)).sort(), want, e.message);
        throw e;
    }
}

async function join(page, name, room) {
    await page.fill('#name', name);
    await page.fill('#room', room);
    await page.click('#join');
}

async function say(page, text, { enter = true } = {}) {
    await page.fill('#message', text);
    if (enter) await page.press('#message', 'Enter');
    else await page.click('#send');
}

describe('chat page in Chromium', { timeout: 90_000 }, () => {
    let server;
    let alice;
    let bob;

    before(async () => {
        server = await startServer(chatBin(), [], { name: 'chat' });
        [alice, bob] = await Promise.all([openBrowser('alice'), openBrowser('bob')]);
    }, { timeout: 40_000 });

    let screenshotTaken = false;
    async function screenshot() {
        try {
            await alice.page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: WAIT });
            screenshotTaken = true;
        } catch (e) {
            console.error(`screenshot failed: ${e.message}`);
        }
    }

    after(async () => {
        if (alice && !screenshotTaken) await screenshot();
        await Promise.all([closeBrowser(alice), closeBrowser(bob)]);
        await server?.stop();
    }, { timeout: 30_000 });

    it('serves the page, which connects on its first join', async () => {
        for (const b of [alice, bob]) {
            const res = await b.page.goto(server.url + '/', { waitUntil: 'load', timeout: WAIT });
            assert.equal(res.status(), 200);
            await waitForStatus(b.page, 'not connected');
            assert.equal(await b.page.inputValue('#room'), 'lobby');
        }
    });

    it('alice joins the lobby and is its only member', async () => {
        await join(alice.page, 'alice', 'lobby');
        await waitForStatus(alice.page, 'connected');
        await waitForMembers(alice.page, ['alice']);
        await waitForLine(alice.page, 'system', 'alice joined lobby');
    });

    it('bob joins; both see each other, alice sees a system line', async () => {
        await join(bob.page, 'bob', 'lobby');
        await waitForStatus(bob.page, 'connected');
        await waitForMembers(bob.page, ['alice', 'bob']);
        await waitForMembers(alice.page, ['alice', 'bob']);
        await waitForLine(alice.page, 'system', 'bob joined lobby');
        await waitForLine(bob.page, 'system', 'bob joined lobby');
        assert.ok((await members(bob.page)).includes('alice'));
    });

    it('messages reach the other page (Enter and the Send button)', async () => {
        await say(alice.page, 'hello from alice');
        await waitForLine(bob.page, 'message', 'alice: hello from alice');
        await waitForLine(alice.page, 'message', 'alice: hello from alice');
        assert.equal(await alice.page.inputValue('#message'), '', 'input cleared after sending');

        await say(bob.page, 'hi from bob', { enter: false });
        await waitForLine(alice.page, 'message', 'bob: hi from bob');
        await waitForLine(bob.page, 'message', 'bob: hi from bob');
    });

    it('user text is shown as text, not HTML', async () => {
        const evil = '<img src=x onerror="window.__pwned=1"><b>bold</b> & "quotes"';
        await say(alice.page, evil);
        await waitForLine(bob.page, 'message', `alice: ${evil}`);
        for (const b of [alice, bob]) {
            assert.equal(await b.page.$$eval('#messages img, #messages b', (els) => els.length), 0);
            assert.equal(await b.page.evaluate(() => window.__pwned ?? null), null);
        }
    });

    it('rooms: joining a second room, switching, leaving', async () => {
        await join(bob.page, 'bob', 'side room');
        await waitForMembers(bob.page, ['bob']);
        await waitForLine(bob.page, 'system', 'bob joined side room');
        assert.equal(await bob.page.$$eval('#rooms li', (lis) => lis.length), 2);

        // a lobby message while bob looks at the side room is shown when he switches back
        await say(alice.page, 'anyone here?');
        await waitForLine(alice.page, 'message', 'alice: anyone here?');
        await bob.page.locator('#rooms li', { hasText: 'lobby' }).locator('.room-name').click();
        await waitForLine(bob.page, 'message', 'alice: anyone here?');
        await waitForMembers(bob.page, ['alice', 'bob']);

        // leaving the side room keeps bob in the lobby
        await bob.page.locator('#rooms li', { hasText: 'side room' }).locator('.leave').click();
        await bob.page.waitForFunction(() => document.querySelectorAll('#rooms li').length === 1, null, { timeout: WAIT });
        await say(bob.page, 'still in the lobby');
        await waitForLine(alice.page, 'message', 'bob: still in the lobby');
    });

    it('closing a page makes the others see the user leave', async () => {
        await bob.page.close();
        await waitForLine(alice.page, 'system', 'bob left lobby');
        await waitForMembers(alice.page, ['alice']);
    });

    it('the page loaded only its own files and raised no errors', async () => {
        for (const b of [alice, bob]) {
            const origin = new URL(server.url);
            for (const url of [...b.requests, ...b.webSockets]) {
                const u = new URL(url);
                assert.equal(u.host, origin.host, `request to another host: ${url}`);
                assert.ok(['http:', 'ws:'].includes(u.protocol), `unexpected scheme: ${url}`);
                const isHub = u.pathname === '/chat' || u.pathname === '/chat/negotiate';
                if (isHub) assert.match(u.search, /[?&]name=(alice|bob)(&|$)/, `the hub request names its user: ${url}`);
                assert.ok(isHub || ALLOWED_PATHS.has(u.pathname), `unexpected request: ${url}`);
            }
            assert.deepEqual(b.pageErrors, [], `${b.name}: page errors`);
            assert.deepEqual(b.consoleErrors, [], `${b.name}: console errors`);
        }
        assert.equal(await alice.page.textContent('#status'), 'connected');
        await screenshot();
    });

    it('the status leaves "connected" when the server goes away', async () => {
        await server.stop();
        await alice.page.waitForFunction(
            () => ['reconnecting', 'disconnected'].includes(document.querySelector('#status')?.textContent.trim()),
            null, { timeout: WAIT });
        assert.equal(await alice.page.isDisabled('#send'), true, 'cannot send while not connected');
    });
});

describe('chat page in Chromium: a room whose history no longer covers what a page missed', { timeout: 90_000 }, () => {
    let server;
    let alice;
    let bob;

    before(async () => {
        // Rooms keep 2 messages: a page away for 3 cannot get them all back.
        server = await startServer(chatBin(), ['--history-size', '2', '--recent', '2'], { name: 'chat' });
        [alice, bob] = await Promise.all([openBrowser('alice'), openBrowser('bob')]);
    }, { timeout: 40_000 });

    after(async () => {
        await Promise.all([closeBrowser(alice), closeBrowser(bob)]);
        await server?.stop();
    }, { timeout: 30_000 });

    async function messages(page) {
        return page.$$eval('#messages .message', (els) => els.map((e) => e.textContent.trim()));
    }

    it('the page says so, shows nothing stale, and goes on with new messages', async () => {
        for (const [b, name] of [[alice, 'alice'], [bob, 'bob']]) {
            await b.page.goto(server.url + '/', { waitUntil: 'load', timeout: WAIT });
            await join(b.page, name, 'lobby');
            await waitForStatus(b.page, 'connected');
        }
        await waitForMembers(alice.page, ['alice', 'bob']);
        await say(bob.page, 'before');
        await waitForLine(alice.page, 'message', 'bob: before');

        await alice.page.goto('about:blank');
        await waitForLine(bob.page, 'system', 'alice left lobby');
        for (const text of ['missed 1', 'missed 2', 'missed 3']) {
            await say(bob.page, text);
            await waitForLine(bob.page, 'message', `bob: ${text}`);
        }
        await alice.page.goto(server.url + '/', { waitUntil: 'load', timeout: WAIT });
        await waitForStatus(alice.page, 'connected');
        await waitForLine(alice.page, 'system', 'some messages of this room are no longer kept');
        await say(bob.page, 'after');
        await waitForLine(alice.page, 'message', 'bob: after');
        // Nothing from the broken stretch is shown as if it had followed on: only what came after.
        assert.deepEqual(await messages(alice.page), ['bob: after']);
        assert.deepEqual(alice.pageErrors, []);
    });
});
