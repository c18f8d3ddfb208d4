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
- ``edgepick.identify(token)``: links the visitor to a user (a token the site signed);
- **behavioural signals** (``core.events`` ``signal``): the deepest scroll of the page (one
  event, when hidden), clicks on ``[data-edgepick-track=NAME]``, forms started / submitted /
  abandoned (started, not submitted when the page is hidden; by ``data-edgepick-form``, id or
  name: never a field's value), site searches (a ``form[data-edgepick-search]``'s
  ``input[type=search]`` or ``input[name=q]``, normalized like ``core.events.normalize_query``
  before it leaves the page), product views (a product marked ``data-edgepick-view``, e.g. a
  product page's, half visible; sampled at the script tag's ``data-edgepick-sample`` rate), add to cart / remove (``[data-edgepick-cart=add|remove]``
  inside ``[data-edgepick-product=ID][data-edgepick-category=CAT]``); ``edgepick.signal(kind,
  fields)`` sends one of the site's own. Nothing is sent under Global Privacy Control or a
  consent cookie ``ep_consent`` saying no (and the edge takes them only from a visitor with a
  valid cookie, i.e. consent). Queued and sent 2 s after the first, at 10 queued, on submit and
  when the page is hidden, in beacons of at most 20; at most ``MAX_SIGNALS`` per page.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from html import escape

from core.decide import Decision
from core.engine import Engine
from core.model import Granularity, Placement

TIMEOUT_MS = 1500  # async slots fall back to their default after this long without decisions
MAX_SIGNALS = 20  # browser signals one page sends at most (the beacon takes 30 a minute)

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
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") { report(); leave(); } });
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
  var q = [], sent = 0, tq, depth = 0, forms = {}, seen = {}, me = d.currentScript, rate = +(me && me.getAttribute("data-edgepick-sample")) || 1;
  function sig(kind, x, sample) {
    if (navigator.globalPrivacyControl || /(^|; *)ep_consent=(0|no|false|denied)(;|$)/.test(d.cookie) || sent >= MAX_SIGNALS || (sample && Math.random() >= rate)) return;
    x.type = "signal"; x.signal = kind; x.id = uid(); x.path = location.pathname;
    if (sample) x.rate = rate;
    q.push(x); sent++;
    if (q.length > 9) flush(); else tq = tq || setTimeout(flush, 2000);
  }
  function flush() { clearTimeout(tq); tq = 0; while (q.length) send(q.splice(0, 20)); }
  function attr(el, a) { return ((el && el.getAttribute(a)) || "").slice(0, 128); }
  function product(el, action) { sig("product", { name: attr(el, "data-edgepick-product"), category: attr(el, "data-edgepick-category"), action: action }, action == "view"); }
  function fname(f) { return attr(f, "data-edgepick-form") || f.id || attr(f, "name") || "form"; }
  d.addEventListener("click", function (e) {
    var t = e.target && e.target.closest ? e.target : null, k = t && t.closest("[data-edgepick-track]"), c = t && t.closest("[data-edgepick-cart]"), p = c && c.closest("[data-edgepick-product]");
    k && sig("track", { name: attr(k, "data-edgepick-track") });
    if (p) product(p, attr(c, "data-edgepick-cart") == "remove" ? "remove" : "add");
  }, true);
  d.addEventListener("focusin", function (e) {
    var f = e.target.form;
    if (f && !f.hasAttribute("data-edgepick-search") && !forms[fname(f)]) { forms[fname(f)] = 1; sig("form", { name: fname(f), action: "start" }); }
  }, true);
  d.addEventListener("submit", function (e) {
    var f = e.target, i = f.querySelector("input[type=search],input[name=q]"), v = i ? i.value.slice(0, 256).toLowerCase().replace(/\S+@\S+|\d{5,}|[^\p{L}\p{M}\p{N}\s'-]+|_/gu, " ").replace(/\s+/g, " ").trim().slice(0, 64) : "";
    if (!f.hasAttribute("data-edgepick-search")) { forms[fname(f)] = 2; sig("form", { name: fname(f), action: "submit" }); } else if (v) sig("search", { query: v });
    flush();
  }, true);
  w.addEventListener("scroll", function () {
    depth = Math.max(depth, Math.min(100, Math.round((w.scrollY + w.innerHeight) * 100 / d.documentElement.scrollHeight)) || 0);
  }, { passive: true });
  function go() {
    var io = new IntersectionObserver(function (es) {
      es.forEach(function (x) { var n = attr(x.target, "data-edgepick-product"); if (x.isIntersecting && !seen[n]) { seen[n] = 1; product(x.target, "view"); } });
    }, { threshold: 0.5 });
    d.querySelectorAll("[data-edgepick-product][data-edgepick-view]").forEach(function (el) { io.observe(el); });
    fill();
  }
  function leave() {
    if (depth) sig("scroll", { depth: depth });
    depth = 0;
    for (var f in forms) if (forms[f] == 1) { forms[f] = 3; sig("form", { name: f, action: "abandon" }); }
    flush();
  }
  w.edgepick.signal = sig;
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", go); else go();
})();
""".replace("TIMEOUT_MS", str(TIMEOUT_MS)).replace("MAX_SIGNALS", str(MAX_SIGNALS))


def _library() -> str:
    try:  # written into the worker bundle by compile.bundle (not present in the source tree)
        return str(importlib.import_module("edge.vitals_lib").SOURCE)
    except ModuleNotFoundError:
        return ""


WEB_VITALS = _library()
SOURCE = WEB_VITALS + CLIENT


DEFAULT_TEMPLATE = "<template data-edgepick-default>"  # an async slot's default, inert


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
            marks[slot_config.selector] = f"{DEFAULT_TEMPLATE}{default}</template>"
    return marks
