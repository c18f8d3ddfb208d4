"""``edgepick sync``: the scheduled job, collect -> learn -> compile -> publish.

One round:

1. **collect**: training rows from the store (exposures joined with their outcomes);
2. **retire**: variants confidently below ``min_engagement`` go into the registry's overrides
   (audit-logged), which the compile step applies to a working copy of the config;
3. **learn**: aggregates -> Thompson weights, linear arms, cold-start allocations, laid over the
   base model (``--model``) slot by slot; saved as ``models/<snapshot id>.json``;
4. **compile**: config (+ overrides) + model -> snapshot whose parent is the current one;
5. **publish**: when the snapshot id changed, blob then pointer on every target;
6. **profiles**: the stitched profiles of users with events since the last round,
   as ``profile/<user>``;
7. **monitor**: volume and latency alerts (log + optional webhook).

The learner is seeded, so the same events give the same snapshot id and no republish.

The config is a file (``SyncJob.config``), or with ``config=None`` the registry's live config
version (``REGISTRY/configs/HEAD``: what the workspace published), read at every round, so a
workspace publish between rounds is what the next round learns on (``live_config``).

With a lake (``SyncJob.lake``, or ``EDGEPICK_LAKE=DIR`` in the environment, ``origin.lake``),
the collect step flushes the store's new rows into the lake and brings the aggregates kept
between rounds up to date (``origin.lake.rounds``): a round reads the events past its
watermark, not the history, and learns exactly what the store's training rows give. Profiles
are then recomputed for the users the new events name (late ones included).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compile.site import compile_site, load_model, load_toml
from core.features import VisitorState
from core.model import Site
from core.profile import encode_profile, profile_key
from core.snapshot import encode_snapshot
from origin.aggregates import Aggregates, Summer
from origin.learn import LearnConfig, learn, overlay, widths
from origin.monitor import Alert, AlertBook, MonitorConfig, check, report
from origin.publish import publish
from origin.registry import Registry, RegistryError, write_atomic
from origin.retire import RetireConfig, Retirement, retirements
from origin.settings import LAKE_ENV
from origin.stitch import iter_profiles, links, profile_for
from origin.store import EventStore
from origin.targets import Target
from origin.training import Reward, Windows, training_rows

STEPS = ("collect", "retire", "learn", "compile", "publish", "profiles", "monitor")


def lake_from_env() -> Any:
    """The ``origin.lake.rounds.LakeRounds`` that ``EDGEPICK_LAKE`` names (engine from
    ``EDGEPICK_LAKE_ENGINE``), or ``None`` when it is not set."""
    root = os.environ.get(LAKE_ENV, "")
    if not root:
        return None
    from origin.lake.engines import engine
    from origin.lake.rounds import LakeRounds
    from origin.lake.segments import Lake

    return LakeRounds(Lake(root), engine(None))  # None: EDGEPICK_LAKE_ENGINE, else DuckDB


@dataclass
class SyncJob:
    # the site config file; None: the registry's live config version (REGISTRY/configs/HEAD,
    # what the workspace publishes and `edgepick push` proposes), read again every round
    config: Path | None
    store: EventStore
    registry: Registry
    targets: Sequence[Target]
    model: Path | None = None
    windows: Windows = field(default_factory=Windows)
    reward: Reward = field(default_factory=Reward)
    learn: LearnConfig = field(default_factory=LearnConfig)
    retire: RetireConfig = field(default_factory=RetireConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    webhook: str | None = None
    author: str = "edgepick-sync"
    clock: Callable[[], float] = time.time
    lake: Any = field(default_factory=lake_from_env)  # origin.lake.rounds.LakeRounds, or None
    # a purchase-propensity model (origin.propensity; default: REGISTRY/propensity.json when it
    # exists): each published profile carries its ``propensity:<bucket>`` flag
    propensity: Path | None = None


@dataclass
class RoundResult:
    snapshot: str = ""
    published: bool = False
    rows: int = 0
    learnable: int = 0
    retired: list[Retirement] = field(default_factory=list)
    held: str = ""  # why nothing was published although something was learned
    profiles: int = 0
    profile_errors: list[str] = field(default_factory=list)  # one line per profile not published
    alerts: list[Alert] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # the round failed after its retries (run_loop)

    def summary(self) -> str:
        state = (
            "published" if self.published else (f"held: {self.held}" if self.held else "unchanged")
        )
        return (
            f"snapshot {self.snapshot} ({state}); {self.rows} rows ({self.learnable} policy "
            f"draws); {len(self.retired)} retired; {self.profiles} profiles"
            + (f" ({len(self.profile_errors)} failed)" if self.profile_errors else "")
            + "; "
            f"{len(self.alerts)} alerts"
        )


PROFILE_CHUNK = 10_000  # profiles encoded, flagged and written per bulk write


def _publish_profiles(
    job: SyncJob, profiles: Iterable[tuple[str, VisitorState]], now: float
) -> tuple[int, list[str]]:
    """Publish the profiles (with their propensity flag) ``PROFILE_CHUNK`` at a time, each
    chunk in one ``put_many`` per target, so memory holds one chunk, not every profile. One that
    cannot be encoded or written is reported and skipped, never fatal to the round (the
    monitors still run, loop mode goes on): a chunk a target refuses is written again key by
    key, and only the keys refused again are reported."""
    published, errors = 0, []

    def failed(user: str, exc: Exception) -> None:
        errors.append(f"profile {user!r:.80}: {type(exc).__name__}: {exc}"[:300])
        print(f"edgepick sync: {errors[-1]}", file=sys.stderr)

    for chunk in _chunks(profiles, PROFILE_CHUNK):
        blobs: dict[str, tuple[str, bytes]] = {}
        for user, state in _with_propensity(job, dict(chunk), now).items():
            try:
                blobs[user] = (profile_key(user), encode_profile(state))
            except Exception as exc:  # a bad profile must not stop the round
                failed(user, exc)
        ok = dict(blobs)
        for target in job.targets:
            try:
                target.put_many(dict(ok.values()))
                continue
            except Exception:  # retried key by key just below
                pass
            for user, (key, blob) in list(ok.items()):
                try:
                    target.put(key, blob)
                except Exception as exc:
                    failed(user, exc)
                    del ok[user]
        published += len(ok)
    return published, errors


def _chunks(
    items: Iterable[tuple[str, VisitorState]], size: int
) -> Iterator[list[tuple[str, VisitorState]]]:
    chunk: list[tuple[str, VisitorState]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _hold_paused(
    job: SyncJob, model: dict[str, Any], base: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Paused slots keep the numbers of the model last published (else the base model's)."""
    paused = job.registry.overrides.paused
    if not paused:
        return model
    current = job.registry.current()
    path = job.registry.root / "models" / f"{current}.json"
    previous = json.loads(path.read_text()) if current and path.exists() else (base or {})
    slots = dict(model.get("slots", {}))
    for slot in paused:
        kept = (previous.get("slots") or {}).get(slot)
        if kept is None:
            slots.pop(slot, None)
        else:
            slots[slot] = kept
    return {**model, "slots": slots}


def live_config(registry: Registry) -> tuple[dict[str, Any], str]:
    """The registry's live config version (``REGISTRY/configs/HEAD``, docs/workspace.md "One
    source of truth") and its id; ``RegistryError`` when the registry has none yet. As
    ``edgepick pull`` gives it: the TOML text it was pushed or seeded from when kept (its tables
    in the author's order), else the stored version (canonical JSON, keys sorted)."""
    import tomllib

    from origin.workspace.versions import Versions

    versions = Versions(registry)
    vid = versions.head()
    if vid is None:
        raise RegistryError(
            f"no config version in {registry.root / 'configs'} (HEAD): seed one with "
            "`edgepick workspace --config SITE.toml` or publish a pushed draft, or give sync "
            "a config file"
        )
    text = versions.text(vid)
    return (tomllib.loads(text) if text is not None else versions.get(vid)), vid


def _config(job: SyncJob) -> tuple[dict[str, Any], str]:
    """The config a round compiles and its name for messages: the file, or the live version."""
    if job.config is not None:
        return load_toml(job.config), str(job.config)
    config, vid = live_config(job.registry)
    return config, f"config version {vid}"


def _compile(job: SyncJob, model: dict[str, Any] | None) -> Site:
    config, source = _config(job)
    return compile_site(job.registry.overrides.apply(config), model, source)


def _watermark(job: SyncJob) -> dict[str, Any]:
    path = job.registry.root / "sync.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def run_round(job: SyncJob, step: Callable[[str], None] = lambda name: None) -> RoundResult:
    """One round; ``step(name)`` is called as each step starts (for the progress display)."""
    result = RoundResult()
    now = job.clock()
    base = load_model(job.model) if job.model else None

    step("collect")
    site = _compile(job, base)
    touched: set[str] | None = None  # the users new events name (None: by event time)
    if job.lake is not None:
        everything, learnable, touched = _collect_lake(job, site, result)
    else:
        everything, learnable = _collect(job, site, result)

    step("retire")
    overrides = job.registry.overrides
    for retirement in retirements(site, everything, job.retire):
        if overrides.is_kept(retirement.slot, retirement.variant):
            continue  # an operator unretired it: it stays until they resume
        if job.registry.overrides.retire(retirement.slot, retirement.variant):
            job.registry.audit(
                "retire",
                slot=retirement.slot,
                variant=retirement.variant,
                n=retirement.n,
                rate=round(retirement.rate, 6),
                upper=round(retirement.upper, 6),
                threshold=retirement.threshold,
                author=job.author,
            )
            result.retired.append(retirement)
    if result.retired:
        site = _compile(job, base)

    step("learn")
    learned = learn(site, learnable, job.learn)  # retiring leaves the widths as they were
    model = _hold_paused(job, overlay(base, learned), base)
    result.model = model

    step("compile")
    site = _compile(job, model)
    parent = job.registry.current() or ""
    blob = encode_snapshot(
        site,
        parent=parent,
        created=int(now),
        author=job.author,
        message=f"sync: {result.rows} rows, {len(learned['slots'])} slots learned",
    )

    step("publish")
    header = job.registry.add(blob)
    result.snapshot = header.id
    write_atomic(
        job.registry.root / "models" / f"{header.id}.json",
        (json.dumps(model, indent=2, sort_keys=True) + "\n").encode(),
    )
    pin = job.registry.overrides.pin
    if pin is not None:  # an operator's rollback or pin holds until `edgepick resume`
        result.held = f"pinned to {pin.get('snapshot')} by {pin.get('by') or 'someone'}"
    elif header.id != parent:
        publish(blob, job.targets, job.registry, author=job.author)
        result.published = True

    step("profiles")
    mark = _watermark(job)
    since = int(mark.get("profiles_ms", 0))
    if touched is None:
        touched = {e["user"] for e in job.store.identifies() if e["ts"] >= since}
        linked = links(job.store)
        for e in job.store.exposures(since):
            user = e.get("user") or linked.get(e["visitor"], "")
            if user:
                touched.add(user)
    if since == 0:  # everyone, streamed: memory holds one chunk of profiles (iter_profiles)
        everyone = iter_profiles(job.store, site.signals)
        result.profiles, result.profile_errors = _publish_profiles(job, everyone, now)
    elif touched:
        some = _profiles_of(job, site, touched).items()
        result.profiles, result.profile_errors = _publish_profiles(job, some, now)
    mark["profiles_ms"] = int(now * 1000)
    write_atomic(job.registry.root / "sync.json", json.dumps(mark).encode())

    step("monitor")  # the book keeps open alerts: each is reported once, when it opens
    book = AlertBook(job.registry.root / "alerts.json")
    result.alerts = check(job.store, int(now * 1000), job.monitor, book)
    report(result.alerts, job.webhook)
    return result


def _collect(job: SyncJob, site: Site, result: RoundResult) -> tuple[Aggregates, Aggregates]:
    """Every exposure's training row, summed: (every exposure, the policy draws)."""
    # one pass over the rows as the store yields them: nothing holds a round's rows
    width = widths(site)
    everything, learnable = Summer(width, learnable_only=False), Summer(width)
    for row in training_rows(job.store, job.windows, job.reward):
        result.rows += 1
        result.learnable += row.learnable
        everything.add(row)
        learnable.add(row)
    return everything.result(), learnable.result()


def _collect_lake(
    job: SyncJob, site: Site, result: RoundResult
) -> tuple[Aggregates, Aggregates, set[str] | None]:
    """The same sums from the lake's aggregates, brought up to date with the store's new rows;
    and the users whose profiles the new events change (``None``: anyone's)."""
    path = getattr(job.store, "path", None)
    if path is None:
        raise ValueError(f"sync with a lake: the store {job.store!r} is not a SQLite file")
    found = job.lake.round(widths(site), job.windows, job.reward, store_path=path)
    result.rows, result.learnable = found.rows, found.learnable_rows
    touched: set[str] | None = None
    if found.visitors is not None and found.users is not None:
        touched = set(found.users)
        for visitor in found.visitors:
            user = job.store.user_of(visitor)
            if user:
                touched.add(user)
    return found.everything, found.learnable, touched


def _with_propensity(
    job: SyncJob, profiles: Mapping[str, VisitorState], now: float
) -> Mapping[str, VisitorState]:
    """The profiles with their purchase-propensity bucket, when a model is there to say it."""
    path = job.propensity or job.registry.root / "propensity.json"
    if not path.is_file() or not profiles:
        return profiles
    from origin.propensity import PropensityModel, flags_for

    return flags_for(profiles, PropensityModel.from_json(path.read_text()), int(now))


def _profiles_of(job: SyncJob, site: Site, users: set[str]) -> dict[str, VisitorState]:
    """The profiles of ``users`` (those the origin knows), each from the events it depends on."""
    profiles = {}
    for user in sorted(users):
        state = profile_for(job.store, site.signals, user)
        if state is not None:
            profiles[user] = state
    return profiles


def run_loop(
    job: SyncJob,
    rounds: int = 0,
    interval: float = 300.0,
    once: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    show: bool = True,
    retries: int = 3,
    backoff: float = 5.0,
) -> list[RoundResult]:
    """Rounds until ``rounds`` are done (0: until interrupted), with a rich progress display.

    A round that fails (a target down, the store locked...) is reported and, in loop mode
    (not ``once``), retried up to
    ``retries`` times, waiting ``backoff``, then twice that, ... (capped at ``interval``); if it
    still fails it is recorded as failed (``RoundResult.error``) and the loop goes on to the
    next round. Only an interrupt stops it.
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, quiet=not show)
    results: list[RoundResult] = []
    limit = 1 if once else rounds
    if once:  # one round for cron: it fails at once (exit status 1), cron runs the next one
        retries = 0
    n = 0
    while limit == 0 or n < limit:
        n += 1
        result = _attempt(job, n, console, sleep, retries, backoff, interval)
        results.append(result)
        if result.error:
            # the error's text is not markup, and one line whatever the terminal's width
            console.print(f"round {n}: [red]failed[/] {escape(result.error)}", soft_wrap=True)
        else:
            console.print(f"round {n}: {result.summary()}")
        for retirement in result.retired:
            console.print(f"  retired {retirement.describe()}")
        for alert in result.alerts:
            console.print(f"  [red]alert[/] {escape(alert.message)}", soft_wrap=True)
        if limit == 0 or n < limit:
            sleep(interval)
    return results


def _attempt(
    job: SyncJob,
    n: int,
    console: Any,
    sleep: Callable[[float], None],
    retries: int,
    backoff: float,
    interval: float,
) -> RoundResult:
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    wait = backoff
    for attempt in range(retries + 1):
        try:
            with Progress(
                TextColumn("[bold]round {task.fields[round]}[/] {task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("start", total=len(STEPS), round=n)

                def step(name: str, task: TaskID = task) -> None:
                    progress.update(task, description=name, completed=STEPS.index(name))

                result = run_round(job, step)
                progress.update(task, completed=len(STEPS), description="done")
            return result
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # reported, retried, never the end of the loop
            error = f"{type(exc).__name__}: {exc}"[:500]
            if attempt == retries:
                job.registry.audit("sync-failed", round=n, error=error, author=job.author)
                return RoundResult(error=error)
            console.print(f"round {n}: {escape(error)}; retrying in {wait:.0f} s", soft_wrap=True)
            sleep(wait)
            wait = min(wait * 2, interval)
    raise AssertionError("unreachable")
