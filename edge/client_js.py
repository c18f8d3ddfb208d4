# ruff: noqa: E501  (JavaScript source)
"""The page client served at ``/_edgepick/client.js``.

``CLIENT`` is edgepick's own script; ``SOURCE`` (what the worker serves) is npm ``web-vitals``
(its IIFE build, defining ``webVitals``) followed by ``CLIENT``. ``compile.bundle`` writes the
library into the worker bundle as ``edge/vitals_lib.py`` at build time (from
``node_modules/web-vitals``); the source tree has no such module, so code run from it (the
CPython tests of the handler) serves ``CLIENT`` alone, which then reports navigation timing but
no Core Web Vitals.

What the client does:

- **async slots** (``data-edgepick-async``): asks ``/_edgepick/decide`` for them; on an answer it
  fills each slot, then (on the next frame: rendered) reports it shown with the decision's
  receipt (``{"type": "shown", "decision", "receipt"}``, the exposure); when the API fails, is
  slow (``TIMEOUT_MS``) or leaves a slot out, the slot gets its default content, which the edge
  put inside it as ``<template data-edgepick-default>`` (the placeholder stays as it is when
  there is none), marked ``data-edgepick-fallback``;
- **clicks**: a click inside a slot credits that slot's decision, and any click on a link or
  button credits the page-level decisions (``<meta name="edgepick-decision">``, written by the
  edge); every event carries a random outcome id (one per click), so repeats are distinct and
  replays idempotent;
- ``edgepick.convert(value)``: one visitor-level conversion (no decision: the origin credits
  every decision this visitor was shown within the conversion window, page-level ones and
  those of earlier pages included); ``edgepick.convert(value, slot)``: only that slot's
  decisions on this page. Each call has an outcome id of its own (returned);
- **vitals**: LCP, INP, CLS, TTFB, FCP (web-vitals) and navigation timing (DOMContentLoaded
  and load ends), sent once per page when it is first hidden, with the page's decision ids;
- ``edgepick.identify(token)``: links the visitor to a user (a token the site signed).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from html import escape

from core.decide import Decision
from core.engine import Engine
from core.model import Granularity, Placement

TIMEOUT_MS = 1500  # async slots fall back to their default after this long without decisions

CLIENT = r"""// edgepick page client (see edge/client_js.py)
(function () {
  var base = "/_edgepick/", w = window, d = document, wv = w.webVitals, timeout = TIMEOUT_MS;
  function uid() {
    var a = new Uint8Array(12), s = "";
    w.crypto.getRandomValues(a);
    for (var i = 0; i < a.length; i++) s += (a[i] + 256).toString(16).slice(1);
    return s;
  }
  function send(events) {
    if (!events.length) return;
    var body = JSON.stringify({ events: events });
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(base + "events", new Blob([body], { type: "application/json" }))) return;
    } catch (e) {}
    fetch(base + "events", { method: "POST", body: body, headers: { "content-type": "application/json" }, keepalive: true, credentials: "same-origin" }).catch(function () {});
  }
  function ids(selector, attr, slot) {
    var out = [], els = d.querySelectorAll(selector);
    for (var i = 0; i < els.length; i++) {
      if (!slot || els[i].getAttribute("data-edgepick-slot") === slot) out.push(els[i].getAttribute(attr));
    }
    return out;
  }
  function pageLevel(slot) { return ids('meta[name="edgepick-decision"]', "content", slot); }
  function decisions(slot) { return ids("[data-edgepick-decision]", "data-edgepick-decision", slot).concat(pageLevel(slot)); }
  d.addEventListener("click", function (e) {
    var t = e.target && e.target.closest ? e.target : null;
    var el = t && t.closest("[data-edgepick-decision]"), found = el ? [el.getAttribute("data-edgepick-decision")] : [];
    if (el || (t && t.closest("a[href],button"))) found = found.concat(pageLevel());
    var id = uid();
    send(found.map(function (x) { return { type: "click", decision: x, id: id }; }));
  }, true);
  function pending() { return d.querySelectorAll("[data-edgepick-slot][data-edgepick-async]"); }
  function fill() {
    var els = pending(), names = [], done = false, timer, ctl = w.AbortController ? new AbortController() : null;
    for (var i = 0; i < els.length; i++) names.push(els[i].getAttribute("data-edgepick-slot"));
    if (!names.length) return;
    function settle(data) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      var shown = [];
      ((data && data.decisions) || []).forEach(function (x) {
        var el = d.querySelector('[data-edgepick-slot="' + x.slot + '"][data-edgepick-async]');
        if (!el) return;
        el.innerHTML = x.content;
        el.setAttribute("data-edgepick-decision", x.decision);
        el.removeAttribute("data-edgepick-async");
        if (x.receipt) shown.push({ type: "shown", decision: x.decision, receipt: x.receipt });
      });
      var rest = pending();
      for (var j = 0; j < rest.length; j++) {
        var t = rest[j].querySelector("template[data-edgepick-default]");
        if (t) rest[j].innerHTML = t.innerHTML;
        rest[j].removeAttribute("data-edgepick-async");
        rest[j].setAttribute("data-edgepick-fallback", "");
      }
      if (w.requestAnimationFrame) requestAnimationFrame(function () { send(shown); }); else send(shown);
      d.dispatchEvent(new CustomEvent("edgepick:filled", { detail: data }));
    }
    timer = setTimeout(function () { if (ctl) ctl.abort(); settle(null); }, timeout);
    fetch(base + "decide?slots=" + encodeURIComponent(names.join(",")) + "&path=" + encodeURIComponent(location.pathname) + "&search=" + encodeURIComponent(location.search) + "&referrer=" + encodeURIComponent(d.referrer), { credentials: "same-origin", signal: ctl ? ctl.signal : undefined })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(settle, function () { settle(null); });
  }
  var page = uid(), vitals = {}, reported = false;
  if (wv) ["LCP", "INP", "CLS", "TTFB", "FCP"].forEach(function (m) {
    wv["on" + m](function (x) { vitals[m.toLowerCase()] = x.value; });
  });
  function report() {
    if (reported) return;
    reported = true;
    var nav = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    if (nav && nav.domContentLoadedEventEnd > 0) vitals.dcl = nav.domContentLoadedEventEnd;
    if (nav && nav.loadEventEnd > 0) vitals.load = nav.loadEventEnd;
    var ev = { type: "vitals", id: page, path: location.pathname, decisions: decisions() };
    for (var k in vitals) if (isFinite(vitals[k]) && vitals[k] >= 0) ev[k] = Math.round(vitals[k] * 1e4) / 1e4;
    send([ev]);
  }
  // after web-vitals' own listeners (capture, on window), which finalize the values when hidden
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") report(); });
  w.edgepick = {
    convert: function (value, slot) {
      var id = uid(), v = +value;
      v = isFinite(v) && v > 0 ? v : 0;
      send(slot ? decisions(slot).map(function (x) { return { type: "conversion", decision: x, value: v, id: id }; }) : [{ type: "conversion", value: v, id: id }]);
      return id;
    },
    identify: function (token) { send([{ type: "identify", token: String(token) }]); },
    decisions: decisions,
    page: page,
    vitals: vitals
  };
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", fill); else fill();
})();
""".replace("TIMEOUT_MS", str(TIMEOUT_MS))


def _library() -> str:
    try:  # written into the worker bundle by compile.bundle (not present in the source tree)
        return str(importlib.import_module("edge.vitals_lib").SOURCE)
    except ModuleNotFoundError:
        return ""


WEB_VITALS = _library()
SOURCE = WEB_VITALS + CLIENT


def page_marks(
    engine: Engine, page_decision: Decision | None, filled: Collection[str]
) -> dict[str, str]:
    """What the edge writes into a served page for the client (selector -> HTML to append):

    - the page-level decision, if any, in ``<head>``: ``<meta name="edgepick-decision"
      content=ID data-edgepick-slot=SLOT>`` (clicks and ``convert`` credit it);
    - inside every async slot's placeholder not ``filled`` in place, the slot's default content
      as ``<template data-edgepick-default>`` (inert until the client falls back to it).
    """
    marks: dict[str, str] = {}
    if page_decision is not None:
        slot, decision = escape(page_decision.slot), escape(page_decision.decision_id)
        marks["head"] = (
            f'<meta name="edgepick-decision" content="{decision}" data-edgepick-slot="{slot}">'
        )
    for prepared in engine.slots.values():
        slot_config = prepared.slot
        if (
            slot_config.placement is Placement.ASYNC
            and slot_config.granularity is not Granularity.PAGE
            and slot_config.selector
            and slot_config.selector not in filled
        ):
            default = slot_config.variants[prepared.default].content
            marks[slot_config.selector] = f"<template data-edgepick-default>{default}</template>"
    return marks
