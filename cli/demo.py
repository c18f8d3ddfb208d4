"""``make demo``: the whole loop on this machine, offline, stopping everything it starts.

Starts the sample store origin, the origin service (``edgepick serve``: collector) and the
worker under ``wrangler dev``; publishes the fixture store with its contextual slots starting
from a uniform split; then, round after round, drives synthetic visitors (``origin.population``:
ground-truth preferences that depend on their features) through the edge over HTTP: they browse,
see the home page (hero filled by the edge) and the async recommendations (the decide API), and
click with their true probability through the page beacon. Between rounds the sync job learns
from what the collector stored and publishes a new snapshot, which the edge picks up. Prints the
click-through per round next to the uniform split's and the oracle's expectation; then how many
events the edge sent (its own delivery counters, ``/_edgepick/health``), the origin stored and
the learner used: all equal when nothing was lost.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.devstack import (
    ROOT,
    Process,
    free_port,
    pinned_worker,
    sigterm_interrupts,
    start_collector,
    start_store,
    start_wrangler,
    stop_all,
)
from compile import defaults
from compile.site import compile_site, load_toml
from core.model import Lifecycle, Site
from core.snapshot import encode_snapshot
from origin.population import SimVisitor, click_probability, population
from origin.publish import publish
from origin.registry import Registry
from origin.store import SqliteStore
from origin.sync import SyncJob, run_round
from origin.targets import WranglerTarget
from origin.training import training_rows

MEASURED = ("hero", "recs")


def demo_config(workdir: Path) -> Path:
    """The fixture site with its authored linear scores removed: contextual slots start uniform."""
    text = (defaults.path("site.toml")).read_text()
    stripped = re.sub(r"(?m)^scores = .*\n", "", text)
    path = workdir / "site.toml"
    path.write_text(stripped)
    return path


@dataclass
class Tally:
    shown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURED, 0))
    clicks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURED, 0))
    expected_uniform: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MEASURED, 0.0))
    expected_best: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MEASURED, 0.0))
    errors: int = 0


class Browser:
    """One visitor's HTTP session with the edge: a cookie jar and the page beacon."""

    def __init__(self, base: str, visitor: SimVisitor) -> None:
        self.base = base
        self.visitor = visitor
        self.cookie = ""

    def get(self, path: str) -> bytes:
        return self._send(urllib.request.Request(self.base + path))

    def beacon(self, events: list[dict[str, Any]]) -> None:
        body = json.dumps({"events": events}).encode()
        request = urllib.request.Request(
            self.base + "/_edgepick/events", data=body, headers={"content-type": "application/json"}
        )
        self._send(request)

    def _send(self, request: urllib.request.Request) -> bytes:
        request.add_header("user-agent", self.visitor.user_agent)
        if self.cookie:
            request.add_header("cookie", self.cookie)
        with urllib.request.urlopen(request, timeout=30) as response:
            for header in response.headers.get_all("set-cookie") or []:
                self.cookie = header.split(";")[0]
            return bytes(response.read())


HERO = re.compile(rb'data-edgepick-slot="hero"[^>]*data-edgepick-decision="([^"]+)"')


def visit(base: str, visitor: SimVisitor, site: Site, rng: random.Random, tally: Tally) -> None:
    browser = Browser(base, visitor)
    for path in visitor.browsing():
        browser.get(path)
    utm = f"?utm_source={visitor.utm_source}" if visitor.utm_source else ""
    page = browser.get("/" + utm)
    shown: dict[str, tuple[str, str]] = {}
    hero = HERO.search(page)
    if hero:
        filled = re.search(rb'data-edgepick-slot="hero"[^>]*>(.*?)</div>', page, re.S)
        variant = _variant_by_content(site, "hero", filled.group(1).decode() if filled else "")
        if variant:
            shown["hero"] = (variant, hero.group(1).decode())
    recs = json.loads(browser.get("/_edgepick/decide?slots=recs&path=/"))
    rendered = []
    for d in recs.get("decisions", []):
        shown[d["slot"]] = (d["variant"], d["decision"])
        if d.get("receipt"):  # the page client reports an async slot once it rendered it
            rendered.append({"type": "shown", "decision": d["decision"], "receipt": d["receipt"]})
    clicks: list[dict[str, Any]] = []
    slots = {s.name: s for s in site.slots}
    for name, (variant_id, decision) in shown.items():
        slot = slots[name]
        chosen = next(v for v in slot.variants if v.id == variant_id)
        active = [v for v in slot.variants if v.lifecycle is Lifecycle.ACTIVE]
        tally.shown[name] += 1
        tally.expected_uniform[name] += sum(click_probability(visitor, v) for v in active) / len(
            active
        )
        tally.expected_best[name] += max(click_probability(visitor, v) for v in active)
        if rng.random() < click_probability(visitor, chosen):
            tally.clicks[name] += 1
            clicks.append({"type": "click", "decision": decision, "id": f"c-{name}"})
    if rendered or clicks:
        browser.beacon(rendered + clicks)


def _variant_by_content(site: Site, slot_name: str, html: str) -> str:
    slot = next(s for s in site.slots if s.name == slot_name)
    return next((v.id for v in slot.variants if v.content == html), "")


def drive(base: str, visitors: list[SimVisitor], site: Site, seed: int, workers: int = 6) -> Tally:
    tally = Tally()
    rng = random.Random(seed)
    seeds = [rng.random() for _ in visitors]

    def one(pair: tuple[SimVisitor, float]) -> None:
        try:
            visit(base, pair[0], site, random.Random(pair[1]), tally)
        except (OSError, ValueError):
            tally.errors += 1

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, zip(visitors, seeds, strict=True)))
    return tally


HEALTH_KEY = secrets.token_hex(16)  # the demo worker's: its health details are for the demo


def _health(base: str) -> dict[str, Any]:
    request = urllib.request.Request(
        base + "/_edgepick/health", headers={"x-edgepick-health-key": HEALTH_KEY}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


STORED_KINDS = ("exposure", "page_view", "click", "conversion", "identify")


def delivery(base: str) -> dict[str, int] | None:
    """The worker's own count of the events it sent (``/_edgepick/health``'s ``events``:
    shipped = acknowledged by the collector, dropped, invalid, pending); None when the worker
    does not report them."""
    for attempt in range(3):
        try:
            found = _health(base).get("events")
            break
        except (OSError, ValueError):
            if attempt == 2:
                raise
            time.sleep(0.5)
    if not isinstance(found, dict) or "shipped" not in found:
        return None
    return {k: int(v) for k, v in found.items() if isinstance(v, int)}


def stored(store: SqliteStore) -> dict[str, int]:
    return {kind: store.count(kind) for kind in STORED_KINDS}


def settle(base: str, store: SqliteStore, timeout: float = 30.0) -> dict[str, int] | None:
    """Wait (bounded) until the edge has nothing in flight and the store holds what it shipped;
    returns the edge's delivery counts."""
    deadline = time.monotonic() + timeout
    sent = delivery(base)
    while sent is not None and time.monotonic() < deadline:
        if sent.get("pending", 0) == 0 and sum(stored(store).values()) >= sent["shipped"]:
            break
        time.sleep(0.2)
        sent = delivery(base)
    if sent is None:
        time.sleep(1.0)  # a worker without delivery counters: let waitUntil deliveries land
    return sent


def accounting(sent: dict[str, int] | None, store: SqliteStore, job: SyncJob) -> dict[str, Any]:
    """Events the edge sent, the origin stored, and the learner used (the training rows the
    sync job reads: one per exposure, with the clicks and conversions joined to it)."""
    kept = stored(store)
    rows = outcomes = 0
    for row in training_rows(store, job.windows, job.reward):
        rows += 1
        outcomes += row.clicks + row.conversions
    learner_input = kept["exposure"] + kept["click"] + kept["conversion"]
    out: dict[str, Any] = {
        "sent": None if sent is None else sent["shipped"] + sent["dropped"] + sent["invalid"],
        "shipped": None if sent is None else sent["shipped"],
        "dropped": None if sent is None else sent["dropped"],
        "invalid": None if sent is None else sent["invalid"],
        "stored": sum(kept.values()),
        "stored_by_kind": kept,
        "learner_rows": rows,
        "learner_outcomes": outcomes,
        "learner_used": rows + outcomes,
        "learner_input": learner_input,
    }
    out["lost"] = (
        out["sent"] is None
        or out["sent"] != out["stored"]
        or out["dropped"] != 0
        or out["learner_used"] != learner_input
    )
    return out


def describe(a: Mapping[str, Any]) -> str:
    kinds = a["stored_by_kind"]
    stored_text = ", ".join(f"{n} {k.replace('_', ' ')}s" for k, n in kinds.items() if n)
    if a["sent"] is None:
        sent_text = "the edge did not report what it sent (no delivery counters in its health)"
    else:
        sent_text = f"the edge sent {a['sent']}"
        if a["dropped"] or a["invalid"]:
            sent_text += f" ({a['dropped']} dropped, {a['invalid']} invalid)"
    used = "all" if a["learner_used"] == a["learner_input"] else f"of {a['learner_input']} only"
    verdict = "LOST OR UNACCOUNTED EVENTS" if a["lost"] else "nothing lost"
    return (
        f"events: {sent_text}, the origin stored {a['stored']} ({stored_text}), the learner "
        f"used {used} {a['learner_used']} exposures and outcomes ({a['learner_rows']} training "
        f"rows, {a['learner_outcomes']} outcomes joined; page views feed profiles): {verdict}"
    )


def _wait_snapshot(base: str, snapshot: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _health(base).get("snapshot") == snapshot:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the edge did not pick up snapshot {snapshot} within {timeout:.0f} s")


def run(
    rounds: int = 4,
    visitors: int = 240,
    seed: int = 1,
    workdir: Path | None = None,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run the loop; returns one row per round (also printed)."""
    work = workdir or ROOT / "out" / "demo"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    config = demo_config(work)
    secret = secrets.token_hex(16)
    store_port, serve_port, edge_port = free_port(), free_port(), free_port()
    processes: list[Process] = []
    rows: list[dict[str, Any]] = []
    signals = contextlib.ExitStack()  # a SIGTERM stops the demo's processes, as Ctrl-C does
    signals.enter_context(sigterm_interrupts())
    try:
        say("starting: sample store origin, origin service (collector), wrangler dev ...")
        processes.append(start_store(store_port, work / "logs"))
        processes.append(
            start_collector(
                serve_port, work / "events.db", work / "registry", secret, work / "logs"
            )
        )
        registry = Registry(work / "registry")
        target = WranglerTarget(work / "kv")
        site = compile_site(load_toml(config))
        first = encode_snapshot(
            site,
            created=int(time.time()),
            author="demo",
            message="initial: contextual slots start from a uniform split",
        )
        publish(first, [target], registry, author="demo")
        processes.append(
            start_wrangler(
                edge_port,
                work / "kv",
                {
                    "ORIGIN_URL": f"http://127.0.0.1:{store_port}",
                    "COLLECTOR_URL": f"http://127.0.0.1:{serve_port}/v1/events",
                    "EVENTS_SECRET": secret,
                    "COOKIE_KEYS": f"demo:{secrets.token_hex(16)}",
                    "HEALTH_KEY": HEALTH_KEY,
                    "SNAPSHOT_TTL_SECONDS": "0",
                },
                work / "logs",
                config=pinned_worker(work / "worker"),  # counters live as long as the demo
            )
        )
        base = f"http://127.0.0.1:{edge_port}"
        store = SqliteStore(work / "events.db")
        job = SyncJob(
            config=config, store=store, registry=registry, targets=[target], author="demo-sync"
        )
        snapshot = registry.current() or ""
        say(f"edge on {base}; {visitors} visitors per round, {rounds} rounds\n")
        say(
            f"{'round':>5}  {'snapshot':<22}{'hero CTR':>9}{'uniform':>9}{'oracle':>8}"
            f"{'recs CTR':>10}{'uniform':>9}{'oracle':>8}  events stored"
        )
        for n in range(rounds):
            _wait_snapshot(base, snapshot)
            tally = drive(
                base, population(visitors, seed * 1000 + n, prefix=f"r{n}"), site, seed + n
            )
            sent = settle(base, store)
            row: dict[str, Any] = {"round": n, "snapshot": snapshot, "errors": tally.errors}
            row["shipped"] = None if sent is None else sent["shipped"]
            for name in MEASURED:
                shown = max(tally.shown[name], 1)
                row[f"{name}_ctr"] = tally.clicks[name] / shown
                row[f"{name}_uniform"] = tally.expected_uniform[name] / shown
                row[f"{name}_oracle"] = tally.expected_best[name] / shown
                row[f"{name}_shown"] = tally.shown[name]
            row["events"] = stored(store)
            rows.append(row)
            say(
                f"{n:>5}  {snapshot:<22}{row['hero_ctr']:>9.3f}{row['hero_uniform']:>9.3f}"
                f"{row['hero_oracle']:>8.3f}{row['recs_ctr']:>10.3f}{row['recs_uniform']:>9.3f}"
                f"{row['recs_oracle']:>8.3f}  {row['events']['exposure']} exposures, "
                f"{row['events']['click']} clicks"
            )
            if n < rounds - 1:
                result = run_round(job)
                snapshot = result.snapshot
                site = compile_site(registry.overrides.apply(load_toml(config)), result.model)
        first_round, last = rows[0], rows[-1]
        last["accounting"] = accounting(settle(base, store), store, job)
        say("\n" + describe(last["accounting"]))
        say(
            f"hero click-through: {first_round['hero_ctr']:.3f} (initial split) -> "
            f"{last['hero_ctr']:.3f} (learned), oracle {last['hero_oracle']:.3f}; "
            f"recs: {first_round['recs_ctr']:.3f} -> {last['recs_ctr']:.3f}"
        )
        say(f"work files, logs and the registry: {work}")
        return rows
    finally:
        stop_all(list(reversed(processes)))
        signals.close()
