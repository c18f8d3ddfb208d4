// The peer a Workers user would pick: a JavaScript worker personalizing the same page with
// GrowthBook's JavaScript SDK (npm @growthbook/growthbook, pinned in package.json), doing the
// same JS-side work as edgepick's worker: read and verify a signed cookie (HMAC-SHA256,
// WebCrypto), evaluate one GrowthBook feature per slot for the visitor, fetch the origin's page
// with the visitor's headers, fill the slots with HTMLRewriter (handlers in JS), set the re-signed
// cookie, and ship one signed batch of exposure events to the collector through ctx.waitUntil.
// Used by bench/edge_vs_js.mjs. Written for this benchmark, in the style of GrowthBook's own
// edge examples (a new GrowthBook instance per request, features preloaded).
import { GrowthBook } from "@growthbook/growthbook";

const encoder = new TextEncoder();

const b64url = (bytes) =>
  Buffer.from(bytes).toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const fromB64url = (text) => new Uint8Array(Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64"));

async function hmacKey(secret) {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

function device(ua) {
  if (/bot|crawl|spider/i.test(ua)) return "bot";
  if (/iPad|Tablet/i.test(ua)) return "tablet";
  return /Mobile|iPhone|Android/i.test(ua) ? "mobile" : "desktop";
}

function referrer(value, host) {
  if (!value) return "direct";
  if (value.includes(host)) return "internal";
  if (/google\.|bing\.|duckduckgo\./.test(value)) return "search";
  if (/facebook\.|t\.co|instagram\./.test(value)) return "social";
  return "other";
}

function readCookie(header, name) {
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return "";
}

/**
 * A worker ({fetch(request, env, ctx)}) over `features` (a GrowthBook payload's features: one
 * per slot) and `slots` ({name, selector}[]).
 */
export async function makeJsWorker({ features, slots, cookieSecret, eventsSecret, originUrl, collectorUrl }) {
  const cookieKey = await hmacKey(cookieSecret);
  const eventsKey = await hmacKey(eventsSecret);
  return {
    async fetch(request, env, ctx) {
      const url = new URL(request.url);
      const headers = request.headers;
      // the visitor: a signed cookie "payload.mac", or a new id
      let state = null;
      const raw = readCookie(headers.get("cookie") || "", "ep");
      if (raw && raw.length < 4096) {
        const [payload, mac] = raw.split(".");
        if (payload && mac) {
          const ok = await crypto.subtle.verify("HMAC", cookieKey, fromB64url(mac), encoder.encode(payload));
          if (ok) state = JSON.parse(Buffer.from(fromB64url(payload)).toString());
        }
      }
      const now = Date.now();
      if (!state) {
        const id = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
        state = { id, visits: 1, views: 0, first: now, decisions: {} };
      }
      state.views += 1;
      const attributes = {
        id: state.id,
        visits: state.visits,
        country: (request.cf && request.cf.country) || "",
        device: device(headers.get("user-agent") || ""),
        referrer: referrer(headers.get("referer") || "", url.host),
        utmSource: url.searchParams.get("utm_source") || "",
      };
      // one evaluation per slot
      const gb = new GrowthBook({ attributes, features });
      const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
      const shown = [];
      const rewriter = new HTMLRewriter();
      slots.forEach(({ name, selector }, i) => {
        const result = gb.evalFeature(name);
        const decision = `${nonce}-${i}`;
        shown.push({ slot: name, source: result.source, variation: result.experimentResult?.variationId ?? -1, decision });
        const html = String(result.value);
        rewriter.on(selector, {
          element(element) {
            element.setInnerContent(html, { html: true });
            element.setAttribute("data-edgepick-decision", decision);
          },
        });
      });
      // the origin's page, with the visitor's headers
      const forwarded = new Headers(headers);
      forwarded.delete("host");
      const origin = await fetch(originUrl + url.pathname + url.search, { headers: forwarded });
      const response = new Response(rewriter.transform(origin).body, origin);
      // the re-signed cookie
      state.decisions = Object.fromEntries(shown.map((s) => [s.slot, s.decision]));
      const payload = b64url(encoder.encode(JSON.stringify(state)));
      const mac = b64url(new Uint8Array(await crypto.subtle.sign("HMAC", cookieKey, encoder.encode(payload))));
      response.headers.append("set-cookie", `ep=${payload}.${mac}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax`);
      response.headers.set("cache-control", "private, no-store");
      // one signed batch of events, delivered after the response
      const events = shown.map((s) => ({ type: "exposure", id: s.decision, visitor: state.id, time: now, ...s, ...attributes }));
      const body = JSON.stringify({ events });
      const signature = b64url(new Uint8Array(await crypto.subtle.sign("HMAC", eventsKey, encoder.encode(body))));
      ctx.waitUntil(
        fetch(collectorUrl, { method: "POST", body, headers: { "content-type": "application/json", "x-edgepick-signature": signature } }),
      );
      return response;
    },
  };
}
