// Builds components/plotly_bundle/plotly-recsys.min.js: plotly.js's core and the trace types in
// index.js, from plotly.js's own sources, with the settings of plotly.js's esbuild-config.js
// (IIFE defining the global `Plotly`, ES2016, regl and stream aliases). Run `npm ci && npm run
// build` here; the bundle is committed, so the app never needs Node.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const plotly = require('plotly.js/package.json');
const pinned = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).devDependencies['plotly.js'];
if (plotly.version !== pinned) {
    throw new Error(`plotly.js ${plotly.version} installed, ${pinned} pinned: run npm ci`);
}
const traces = [...readFileSync(join(here, 'index.js'), 'utf8').matchAll(/lib\/(\w+)'\)/g)]
    .map((m) => m[1])
    .filter((name) => name !== 'core');
const outfile = join(here, '..', '..', 'components', 'plotly_bundle', 'plotly-recsys.min.js');

await build({
    entryPoints: [join(here, 'index.js')],
    outfile,
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    legalComments: 'none',
    sourcemap: false,
    target: 'es2016',
    alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' },
    // the only CSS plotly.js imports is maplibre's, for `map` subplots, which this bundle lacks
    loader: { '.css': 'empty' },
    banner: {
        js: `/*! plotly.js v${plotly.version} (MIT, Copyright Plotly, Inc.): core + ${traces.join(', ')}; built by tools/plotly_bundle */`
    },
    logLevel: 'info'
});
