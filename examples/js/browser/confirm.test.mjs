// Browser test of the confirm example (client results): the page in examples/web/confirm served
// by the `confirm` binary with a 2 s client-result timeout, in headless Chromium. Deleting makes
// the server ask the page (ConfirmDelete -> boolean); the test answers by clicking the dialog's
// buttons, or not at all. See chromium.mjs for the environment (CONFIRM_BIN, CHROMIUM_PATH).
// A screenshot of the open dialog goes to /tmp/confirm-screenshot.png.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

import { startServer } from '../interop/server.mjs';
import {
    WAIT, exampleBin, openBrowser, closeBrowser, openPage, waitForText, assertOnlyOwnRequests,
} from './chromium.mjs';

const SCREENSHOT = '/tmp/confirm-screenshot.png';
const FILES = ['/', '/confirm.js', '/confirm.css', '/signalr.min.js'];
const TIMEOUT_SECONDS = 2;

async function itemNames(page) {
    return page.$$eval('#items .item-name', (els) => els.map((e) => e.textContent));
}

async function waitForItems(page, predicate, what) {
    try {
        await page.waitForFunction(predicate, null, { timeout: WAIT });
    } catch (e) {
        throw new Error(`${what}: items are ${JSON.stringify(await itemNames(page))} (${e.message})`);
    }
}

/** Clicks Delete on the item called `name` and waits for the dialog to ask about it. */
async function askToDelete(page, name) {
    await page.locator('#items li', { hasText: name }).locator('button.delete').click();
    await page.waitForSelector('#confirm-dialog:not([hidden])', { timeout: WAIT });
    assert.equal(await page.textContent('#confirm-question'), `Delete ${name}?`);
}

describe('confirm page (client results) in Chromium', { timeout: 90_000 }, () => {
    let server;
    let one;
    let two;

    before(async () => {
        server = await startServer(exampleBin('confirm'), ['--confirm-timeout', String(TIMEOUT_SECONDS)], { name: 'confirm' });
        [one, two] = await Promise.all([openBrowser('one'), openBrowser('two')]);
    }, { timeout: 40_000 });

    after(async () => {
        await Promise.all([closeBrowser(one), closeBrowser(two)]);
        await server?.stop();
    }, { timeout: 30_000 });

    it('serves the page, connects and lists the starting items', async () => {
        for (const b of [one, two]) {
            await openPage(b, server.url + '/');
            await waitForItems(b.page, () => document.querySelectorAll('#items li').length === 4, 'four starting items');
            assert.ok((await itemNames(b.page)).includes('notes.txt'));
            assert.equal(await b.page.isHidden('#confirm-dialog'), true);
        }
    });

    it('answering Keep (false): the server keeps the item', async () => {
        await askToDelete(one.page, 'notes.txt');
        // the server is waiting for the answer: nothing is decided yet
        assert.equal(await one.page.textContent('#outcome'), 'asking to delete notes.txt…');
        await one.page.click('#confirm-no');
        await waitForText(one.page, '#outcome', 'kept notes.txt');
        assert.equal(await one.page.isHidden('#confirm-dialog'), true);
        assert.ok((await itemNames(one.page)).includes('notes.txt'));
        assert.ok((await itemNames(two.page)).includes('notes.txt'));
    });

    it('answering Delete (true): the server deletes it and every page updates', async () => {
        await askToDelete(one.page, 'old-backup.tar');
        try {
            await one.page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: WAIT });
        } catch (e) {
            console.error(`screenshot failed: ${e.message}`);
        }
        await one.page.click('#confirm-yes');
        await waitForText(one.page, '#outcome', 'deleted old-backup.tar');
        for (const b of [one, two]) {
            await waitForItems(b.page, () => ![...document.querySelectorAll('#items .item-name')].some((e) => e.textContent === 'old-backup.tar'), `${b.name} without old-backup.tar`);
            assert.equal((await itemNames(b.page)).length, 3);
        }
    });

    it('only the page that asked is asked: the other page never sees a dialog', async () => {
        assert.equal(await two.page.isHidden('#confirm-dialog'), true);
        assert.equal(await two.page.textContent('#outcome'), '');
    });

    it(`no answer within the client-result timeout (${TIMEOUT_SECONDS} s): the item is kept`, async () => {
        const started = Date.now();
        await askToDelete(two.page, 'holiday-photos.zip');
        await waitForText(two.page, '#outcome', 'no answer in time: kept holiday-photos.zip', (TIMEOUT_SECONDS + 5) * 1000);
        const waited = Date.now() - started;
        assert.ok(waited >= TIMEOUT_SECONDS * 1000 - 200, `answered after ${waited} ms, before the timeout`);
        // the stale dialog is gone, and its late answer did not disturb the connection
        assert.equal(await two.page.isHidden('#confirm-dialog'), true);
        await delay(300);
        assert.equal(await two.page.textContent('#status'), 'connected');
        for (const b of [one, two]) assert.ok((await itemNames(b.page)).includes('holiday-photos.zip'));

        // the same page can still be asked and answer
        await askToDelete(two.page, 'holiday-photos.zip');
        await two.page.click('#confirm-yes');
        await waitForText(two.page, '#outcome', 'deleted holiday-photos.zip');
        await waitForItems(one.page, () => document.querySelectorAll('#items li').length === 2, 'two items left');
    });

    it('a yes to an item another page deleted meanwhile reports it already gone', async () => {
        await askToDelete(one.page, 'notes.txt');
        await askToDelete(two.page, 'notes.txt');
        await two.page.click('#confirm-yes');
        await waitForText(two.page, '#outcome', 'deleted notes.txt');
        await one.page.click('#confirm-yes');
        await waitForText(one.page, '#outcome', 'notes.txt was already deleted');
    });

    it('added items reach every page and can be deleted', async () => {
        await one.page.fill('#new-name', '<b>draft</b> & "notes"');
        await one.page.click('#add');
        for (const b of [one, two]) {
            await waitForItems(b.page, () => [...document.querySelectorAll('#items .item-name')].some((e) => e.textContent === '<b>draft</b> & "notes"'), `${b.name} sees the new item`);
            assert.equal(await b.page.$$eval('#items b', (els) => els.length), 0, 'names are text, not HTML');
        }
        await askToDelete(two.page, '<b>draft</b> & "notes"');
        await two.page.click('#confirm-yes');
        await waitForText(two.page, '#outcome', 'deleted <b>draft</b> & "notes"');
    });

    it('the page loaded only its own files and raised no errors', async () => {
        for (const b of [one, two]) assertOnlyOwnRequests(b, server.url, { hubPath: '/confirm', files: FILES });
    });

    it('the status leaves "connected" when the server goes away', async () => {
        await server.stop();
        await one.page.waitForFunction(
            () => ['reconnecting', 'disconnected'].includes(document.querySelector('#status')?.textContent.trim()),
            null, { timeout: WAIT });
        assert.equal(await one.page.isDisabled('#add'), true);
    });
});
