'use strict';
// plotly.js's core (it always holds the `scatter` trace, the axes, legend, colour bars, hover
// and selection) and the trace types the app draws, nothing else. A trace type missing here
// is drawn as an empty `scatter` without an error: add it to TRACES in build.mjs too, rebuild
// and run tests/integration/test_plotly_bundle.py.
var Plotly = require('plotly.js/lib/core');

Plotly.register([
    require('plotly.js/lib/scattergl'), // the Map (components/scatter.py: map_figure)
    require('plotly.js/lib/bar'), // the Map's purity chart, Compare's per-category chart
    require('plotly.js/lib/parcoords') // Runs: a tuning study's trials (components/tuning.py)
]);

module.exports = Plotly;
