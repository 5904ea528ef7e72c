"""plotly.js with only the trace types the app draws (issue 14), served by Dash.

``plotly-recsys.min.js`` is built from plotly.js's own sources by ``tools/plotly_bundle``
(``npm ci && npm run build`` there; pinned versions, same plotly.js as plotly.py's full bundle)
and committed, so running the app never needs Node. It holds plotly.js's core (``scatter``,
axes, legend, colour bars, hover, selection) and :data:`TRACES`: 1.47 MB instead of the full
bundle's 4.8 MB, which V8 compiles on every first visit. A trace type outside it is drawn as an
empty ``scatter`` without any error: add it to ``tools/plotly_bundle/index.js`` and rebuild
(``tests/integration/test_plotly_bundle.py`` checks every graph the pages draw).
"""

#: plotly.js's version (Dash's component-suites route reads ``__version__`` of the package).
__version__ = "4.1.1"
#: The bundle's file name in this package.
BUNDLE = "plotly-recsys.min.js"
#: Trace types registered in the bundle (``scatter`` comes with plotly.js's core).
TRACES = ("scatter", "scattergl", "bar", "parcoords")
