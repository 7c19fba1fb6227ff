// The report's only script: it draws nothing. It lets a headless browser check the page:
// body[data-errors]  JavaScript errors and policy violations (empty when none),
// body[data-charts] / body[data-charts-drawn]  charts in the page / charts with at least one mark,
// body[data-load-ms]  milliseconds from navigation start to the load event, layout done.
(function () {
  "use strict";
  var errors = [];
  function publish() {
    if (document.body) { document.body.dataset.errors = errors.join(" | "); }
  }
  function record(text) { errors.push(String(text)); publish(); }
  window.addEventListener("error", function (event) {
    record(event.message + " (" + (event.filename || "page") + ":" + event.lineno + ":" + event.colno + ")");
  });
  window.addEventListener("unhandledrejection", function (event) {
    var reason = event && event.reason;
    record("unhandled rejection: " + (reason && reason.message ? reason.message : reason));
  });
  document.addEventListener("securitypolicyviolation", function (event) {
    record("blocked by the page's policy: " + event.violatedDirective + " " + (event.blockedURI || "inline"));
  });
  var consoleError = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
  function countCharts() {
    var charts = document.querySelectorAll("svg.chart");
    var drawn = 0;
    for (var i = 0; i < charts.length; i++) {
      if (charts[i].querySelector("rect, path, circle, line")) { drawn++; }
    }
    document.body.dataset.charts = String(charts.length);
    document.body.dataset.chartsDrawn = String(drawn);
  }
  window.addEventListener("load", function () {
    try {
      countCharts();
      void document.documentElement.getBoundingClientRect().height;  // style and layout done before the clock is read
      document.body.dataset.loadMs = String(Math.round(performance.now()));
    } catch (error) {
      record("checking the page: " + error);
    }
    publish();
  });
})();
