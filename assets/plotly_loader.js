// Which plotly.js the graphs get, and when (issue 14; components/plotlyjs.py). dcc.Graph loads
// plotly.js when the first graph mounts, with `Promise.resolve(window.Plotly || <script of
// Dash's full 4.8 MB bundle>)`. Here window.Plotly is set, on every page, to a stand-in whose
// `then` loads the bundle named in the page's `recsys-plotlyjs` meta tag (the trimmed bundle
// of components/plotly_bundle, or plotly.py's full one under a cacheable URL) the first time
// a graph asks for it: Promise.resolve adopts it, so plotly.js loads and runs once, only on a
// page that draws, and the bundle then sets window.Plotly to the library itself. A document
// that opens the Map starts it at once, with the page's own scripts, so it downloads and
// compiles while the layout and the figure are on their way.
(function () {
  if (window.Plotly) return;
  var meta = document.querySelector('meta[name="recsys-plotlyjs"]');
  var node = document.getElementById("_dash-config");
  var config;
  try {
    config = JSON.parse(node ? node.textContent : "null");
  } catch (err) {
    return;
  }
  if (!meta || !meta.content || !config) return; // dcc.Graph loads Dash's own URL
  var url = (config.requests_pathname_prefix || "/") + "_dash-component-suites/" + meta.content;
  var loading = null;
  var standIn = {
    then: function (resolve, reject) {
      return load().then(resolve, reject);
    },
  };
  function load() {
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = url;
        script.async = true;
        script.onload = function () {
          if (window.Plotly === standIn) reject(new Error("plotly.js did not define Plotly: " + url));
          else resolve(window.Plotly);
        };
        script.onerror = function () {
          loading = null; // a graph mounted later tries again
          reject(new Error("plotly.js could not be loaded from " + url));
        };
        document.head.appendChild(script);
      });
    }
    return loading;
  }
  window.Plotly = standIn;
  if (/\/map\/?$/.test(window.location.pathname)) load().catch(function () {}); // reported by dcc.Graph
})();
