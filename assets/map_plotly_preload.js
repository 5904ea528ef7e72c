// Map first paint (issue 14): when the document opened is the Map, start plotly.js (4.8 MB,
// which dcc.Graph otherwise requests only once the page's layout has arrived and the Graph
// mounts) right away, so it downloads and compiles while the layout and the figure are on
// their way. dcc.Graph loads plotly with `Promise.resolve(window.Plotly || <script>)`: until
// the script has run, window.Plotly is the promise of it (adopted by that Promise.resolve, so
// plotly.js runs once); plotly.js's own bundle then sets window.Plotly to the library.
// Other pages are untouched: they pay for plotly.js only when a graph mounts.
(function () {
  if (window.Plotly || !/\/map\/?$/.test(window.location.pathname)) return;
  var node = document.getElementById("_dash-config");
  var config;
  try {
    config = JSON.parse(node ? node.textContent : "null");
  } catch (err) {
    return;
  }
  if (!config) return;
  // the fingerprinted path (components/plotlyjs.py) is served with a one-year max-age, so a
  // later visit runs plotly.js from the browser's cache without asking the server first
  var meta = document.querySelector('meta[name="recsys-plotlyjs"]');
  var path = (meta && meta.content) || "plotly/package_data/plotly.min.js";
  var url = config.serve_locally
    ? (config.requests_pathname_prefix || "/") + "_dash-component-suites/" + path
    : config.plotlyjs_url;
  if (!url) return;
  var pending = new Promise(function (resolve, reject) {
    var script = document.createElement("script");
    script.src = url;
    script.async = true;
    script.onload = function () {
      resolve(window.Plotly);
    };
    script.onerror = function (err) {
      if (window.Plotly === pending) window.Plotly = undefined; // dcc.Graph may try again
      reject(err);
    };
    document.head.appendChild(script);
  });
  pending.catch(function () {}); // reported by dcc.Graph when it waits for it
  window.Plotly = pending;
})();
