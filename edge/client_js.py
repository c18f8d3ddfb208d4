# ruff: noqa: E501  (JavaScript source)
"""The page client served at ``/_edgepick/client.js`` (kept under 2 KB gzipped; a test checks)."""

SOURCE = r"""// edgepick page client: fills async slots after render and sends clicks and conversions.
(function () {
  var base = "/_edgepick/";
  function send(events) {
    var body = JSON.stringify({ events: events });
    if (navigator.sendBeacon && navigator.sendBeacon(base + "events", new Blob([body], { type: "application/json" }))) return;
    fetch(base + "events", { method: "POST", body: body, headers: { "content-type": "application/json" }, keepalive: true, credentials: "same-origin" });
  }
  function decisions(slot) {
    var out = [], els = document.querySelectorAll("[data-edgepick-decision]");
    for (var i = 0; i < els.length; i++) {
      if (!slot || els[i].getAttribute("data-edgepick-slot") === slot) out.push(els[i].getAttribute("data-edgepick-decision"));
    }
    return out;
  }
  document.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("[data-edgepick-decision]") : null;
    if (el) send([{ type: "click", decision: el.getAttribute("data-edgepick-decision"), id: String(Date.now()) }]);
  }, true);
  function fill() {
    var els = document.querySelectorAll("[data-edgepick-slot][data-edgepick-async]"), names = [];
    for (var i = 0; i < els.length; i++) names.push(els[i].getAttribute("data-edgepick-slot"));
    if (!names.length) return;
    fetch(base + "decide?slots=" + encodeURIComponent(names.join(",")) + "&path=" + encodeURIComponent(location.pathname) + "&search=" + encodeURIComponent(location.search) + "&referrer=" + encodeURIComponent(document.referrer), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        (data.decisions || []).forEach(function (d) {
          var el = document.querySelector('[data-edgepick-slot="' + d.slot + '"]');
          if (!el) return;
          el.innerHTML = d.content;
          el.setAttribute("data-edgepick-decision", d.decision);
          el.removeAttribute("data-edgepick-async");
        });
        document.dispatchEvent(new CustomEvent("edgepick:filled", { detail: data }));
      })
      .catch(function () {});
  }
  window.edgepick = {
    convert: function (value, slot) {
      send(decisions(slot).map(function (id) { return { type: "conversion", decision: id, value: value || 0 }; }));
    },
    identify: function (token) { send([{ type: "identify", token: String(token) }]); },
    decisions: decisions
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fill); else fill();
})();
"""
