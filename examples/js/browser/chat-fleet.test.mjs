// Browser test of the chat example as a fleet: two `chat` servers on one private broker
// (backplane, presence and room history in it), a page on each, in Debian's Chromium; the same
// test on Redis, PostgreSQL and NATS (JetStream).
//
// The members list comes from presence across both servers; when one server is killed
// (SIGKILL: it cannot say goodbye) the other's page sees its user leave within the presence TTL
// (--presence-ttl 2). The killed server's page reconnects to the restarted server and shows the
// messages sent meanwhile, each once; a reloaded page resumes from its saved position the same
// way.
//
//   CHAT_BIN        the server binary (default ../../target/release/chat relative to examples/js)
//   CHROMIUM_PATH   the browser (default /usr/bin/chromium)
//   REDIS_SERVER, PG_BIN, NATS_SERVER   the brokers (see ../scaleout/brokers.mjs)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, chatBin } from '../interop/server.mjs';
import { Nats, Postgres, Redis, freePort } from '../scaleout/brokers.mjs';
import { openBrowser, closeBrowser, waitForText, WAIT } from './chromium.mjs';

const PRESENCE_TTL = 2; // seconds
const LEAVE_WAIT = (PRESENCE_TTL + 3) * 1000; // the TTL, a sweep period and some slack

async function members(page) {
    return page.$$eval('#members li', (lis) => lis.map((li) => li.textContent.trim()).sort());
}

async function waitForMembers(page, expected, timeout = WAIT) {
    const want = [...expected].sort();
    try {
        await page.waitForFunction(
            (w) => JSON.stringify([...document.querySelectorAll('#members li')].map((li) => li.textContent.trim()).sort()) === JSON.stringify(w),
            want, { timeout });
    } catch (e) {
        assert.deepEqual(await members(page), want, e.message);
        throw e;
    }
}

/** The texts of the `#messages` lines with class `cls`. */
async function lines(page, cls) {
    return page.$$eval(`#messages .${cls}`, (els) => els.map((e) => e.textContent.trim()));
}

async function waitForLine(page, cls, text, timeout = WAIT) {
    try {
        await page.waitForFunction(
            ([c, t]) => [...document.querySelectorAll(`#messages .${c}`)].some((e) => e.textContent.trim() === t),
            [cls, text], { timeout });
    } catch (e) {
        assert.fail(`no ${cls} line "${text}" in ${JSON.stringify(await lines(page, cls))}: ${e.message}`);
    }
}

/** Asserts every message line is there exactly once, in this order, and nothing else. */
async function assertMessages(page, expected) {
    assert.deepEqual(await lines(page, 'message'), expected);
}

async function join(page, name, room) {
    await page.fill('#name', name);
    await page.fill('#room', room);
    await page.click('#join');
}

async function say(page, text) {
    await page.fill('#message', text);
    await page.press('#message', 'Enter');
}

for (const [name, Broker, flag] of [['Redis', Redis, '--redis'], ['PostgreSQL', Postgres, '--postgres'], ['NATS', Nats, '--nats']]) describe(`chat fleet: two servers on ${name}, in Chromium`, { timeout: 120_000 }, () => {
    let broker;
    let portA;
    let serverA;
    let serverB;
    let alice;
    let bob;

    const startA = () => startServer(chatBin(), ['--addr', `127.0.0.1:${portA}`, ...fleetArgs()], { name: 'chat-a' });
    const fleetArgs = () => [flag, broker.url, '--presence-ttl', String(PRESENCE_TTL)];

    before(async () => {
        broker = await new Broker(await freePort()).start();
        portA = await freePort();
        [serverA, serverB] = await Promise.all([
            startA(),
            startServer(chatBin(), fleetArgs(), { name: 'chat-b' }),
        ]);
        [alice, bob] = await Promise.all([openBrowser('alice'), openBrowser('bob')]);
    }, { timeout: 40_000 });

    after(async () => {
        await Promise.all([closeBrowser(alice), closeBrowser(bob)]);
        await Promise.all([serverA?.stop(), serverB?.stop()]);
        await broker?.close();
    }, { timeout: 30_000 });

    it('pages on different servers see each other in the members list', async () => {
        await alice.page.goto(serverA.url + '/', { waitUntil: 'load', timeout: WAIT });
        await bob.page.goto(serverB.url + '/', { waitUntil: 'load', timeout: WAIT });
        await join(alice.page, 'alice', 'lobby');
        await waitForText(alice.page, '#status', 'connected');
        await waitForMembers(alice.page, ['alice']);
        await join(bob.page, 'bob', 'lobby');
        await waitForText(bob.page, '#status', 'connected');
        await waitForMembers(bob.page, ['alice', 'bob']);
        await waitForMembers(alice.page, ['alice', 'bob']);
        await waitForLine(alice.page, 'system', 'bob joined lobby');
    });

    it('messages cross servers, and a page joining later gets the recent ones', async () => {
        await say(alice.page, 'one');
        await say(bob.page, 'two');
        await waitForLine(alice.page, 'message', 'bob: two');
        await waitForLine(bob.page, 'message', 'bob: two');
        await assertMessages(alice.page, ['alice: one', 'bob: two']);
        await assertMessages(bob.page, ['alice: one', 'bob: two']);

        // bob joins a second room, with history from before he came
        await say(alice.page, 'three');
        await waitForLine(bob.page, 'message', 'alice: three');
    });

    it('killing alice\'s server: bob sees her leave within the presence TTL', async () => {
        serverA.child.kill('SIGKILL');
        await alice.page.waitForFunction(
            () => ['reconnecting', 'disconnected'].includes(document.querySelector('#status')?.textContent.trim()),
            null, { timeout: WAIT });
        await waitForLine(bob.page, 'system', 'alice left lobby', LEAVE_WAIT);
        await waitForMembers(bob.page, ['bob']);
    });

    it('alice\'s page reconnects to the restarted server and shows what she missed, once', async () => {
        await say(bob.page, 'while you were away');
        await say(bob.page, 'and another');
        await waitForLine(bob.page, 'message', 'bob: and another');
        serverA = await startA();
        await waitForText(alice.page, '#status', 'connected', 15_000);
        await waitForLine(alice.page, 'message', 'bob: and another');
        await waitForMembers(alice.page, ['alice', 'bob']);
        await waitForMembers(bob.page, ['alice', 'bob']);
        await waitForLine(bob.page, 'system', 'alice joined lobby');
        const seen = ['alice: one', 'bob: two', 'alice: three', 'bob: while you were away', 'bob: and another'];
        await assertMessages(alice.page, seen);

        await say(alice.page, 'back');
        await waitForLine(bob.page, 'message', 'alice: back');
        await waitForLine(alice.page, 'message', 'alice: back');
        await assertMessages(alice.page, [...seen, 'alice: back']);
    });

    it('a page that went away and came back resumes from its saved position', async () => {
        await alice.page.goto('about:blank');
        await waitForLine(bob.page, 'system', 'alice left lobby');
        await say(bob.page, 'missed while reloading');
        await waitForLine(bob.page, 'message', 'bob: missed while reloading');
        await alice.page.goto(serverA.url + '/', { waitUntil: 'load', timeout: WAIT });
        await waitForText(alice.page, '#status', 'connected');
        await waitForLine(alice.page, 'message', 'bob: missed while reloading');
        await waitForMembers(alice.page, ['alice', 'bob']);
        assert.equal(await alice.page.inputValue('#name'), 'alice', 'the name came back');
        await assertMessages(alice.page, [
            'alice: one', 'bob: two', 'alice: three', 'bob: while you were away', 'bob: and another',
            'alice: back', 'bob: missed while reloading',
        ]);
    });

    it('the pages raised no errors', async () => {
        for (const b of [alice, bob]) {
            assert.deepEqual(b.pageErrors, [], `${b.name}: page errors`);
        }
    });
});
