// Compiles the chat page: esbuild bundles ../web/chat.ts and the generated typings it imports
// (../web/generated/ChatHub.ts) into one classic script, ../web/chat.js, which the `chat` binary
// embeds and serves. The official client is not bundled: the page loads /signalr.min.js (the
// global `signalR`) and imports only the client's types, so importing a value from
// @microsoft/signalr is an error here.
//
//   node build-web.mjs          write ../web/chat.js              (npm run build:web)
//   node build-web.mjs --check  compile in memory; fail when the committed ../web/chat.js
//                               differs from a fresh build        (part of npm run check:web)

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const JS_DIR = dirname(fileURLToPath(import.meta.url));
const WEB_DIR = join(JS_DIR, '..', 'web');
const ENTRY = join(WEB_DIR, 'chat.ts');
const OUTPUT = join(WEB_DIR, 'chat.js');

const BANNER = [
    '// Compiled from chat.ts and generated/ChatHub.ts by esbuild (`npm run build:web` in examples/js).',
    '// Do not edit: edit chat.ts and rebuild. `npm run check:web` fails when this file is stale.',
].join('\n');

/** Refuses to bundle the official client: the page gets it from /signalr.min.js. */
const signalRIsGlobal = {
    name: 'signalr-is-global',
    setup(build) {
        build.onResolve({ filter: /^@microsoft\/signalr/ }, (args) => ({
            errors: [{
                text: `${args.path} would be bundled into chat.js; the page loads it as /signalr.min.js. ` +
                    'Import its types only (`import type`) and use the global `signalR`.',
            }],
        }));
    },
};

async function compile() {
    const result = await esbuild.build({
        // Paths in the output's comments are relative to the page's folder, wherever this runs.
        absWorkingDir: WEB_DIR,
        entryPoints: [ENTRY],
        bundle: true,
        write: false,
        outfile: OUTPUT,
        format: 'iife',
        platform: 'browser',
        target: 'es2020',
        charset: 'utf8',
        legalComments: 'none',
        banner: { js: BANNER },
        tsconfig: join(JS_DIR, 'tsconfig.web.json'),
        plugins: [signalRIsGlobal],
        logLevel: 'warning',
    });
    const [file] = result.outputFiles;
    return file.text;
}

const check = process.argv.includes('--check');
const fresh = await compile();
const shown = relative(process.cwd(), OUTPUT);
if (check) {
    let committed = null;
    try {
        committed = readFileSync(OUTPUT, 'utf8');
    } catch (e) {
        if (e.code !== 'ENOENT') throw e;
    }
    if (committed !== fresh) {
        console.error(`${shown} is not what chat.ts compiles to: run \`npm run build:web\` in examples/js and commit the result`);
        process.exit(1);
    }
    console.log(`${shown} is up to date`);
} else {
    writeFileSync(OUTPUT, fresh);
    console.log(`wrote ${shown}`);
}
