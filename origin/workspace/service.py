"""The workspace's operations on the registry: start drafts, diff, publish, roll back.

Publishing a draft is the registry's own publish (``origin.publish``): the draft's config, with
the registry's retirements applied (``overrides.apply``) and the learned model of the live
snapshot (pruned to the draft's variants; saved as the new snapshot's model, as sync does), is
compiled by ``compile.site``, written to every target, and its config version becomes HEAD
(``origin.workspace.versions``). Rolling back moves
the snapshot and the config HEAD back together and pins the snapshot, as ``edgepick rollback``
does; the next publish from the workspace lifts that pin. Every step is in the audit log.
"""

from __future__ import annotations

import difflib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compile.site import compile_site, load_model
from core.model import FixedPolicy, Policy, Site, ThompsonPolicy
from core.snapshot import decode_header, decode_snapshot, encode_snapshot
from origin import diff
from origin.publish import CURRENT_KEY, Published, blob_key, publish, rollback
from origin.registry import Registry, RegistryError, write_atomic
from origin.targets import Target
from origin.workspace.accounts import Accounts, User
from origin.workspace.drafts import Draft, Drafts, Forbidden, WorkflowError, a_role
from origin.workspace.editing import condition_text
from origin.workspace.versions import Versions

BY_VARIANT = ("weights", "cold_start", "gammas", "arms")


def prune_model(model: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The learned numbers that still apply to ``config``: slots, variants and segments it no
    longer has are dropped (the compiler would rightly refuse them); new variants get none."""
    slots = config.get("slots", {})
    kept: dict[str, Any] = {}
    for name, learned in dict(model.get("slots", {})).items():
        table = slots.get(name)
        if not isinstance(table, dict) or not isinstance(learned, dict):
            continue
        ids = {v.get("id") for v in table.get("variants", []) if isinstance(v, dict)}
        entry = {
            k: {vid: x for vid, x in v.items() if vid in ids} if k in BY_VARIANT else v
            for k, v in learned.items()
            if not (k in BY_VARIANT and not isinstance(v, dict))
        }
        segments = learned.get("segments")
        if isinstance(segments, dict):
            allowed = set(table.get("policy", {}).get("segments", []))
            entry["segments"] = {
                s: {vid: x for vid, x in w.items() if vid in ids}
                for s, w in segments.items()
                if s in allowed and isinstance(w, dict)
            }
        kept[name] = entry
    return {**model, "slots": kept}


def _settings(policy: Policy) -> tuple[str, dict[str, str]]:
    """A policy's kind and the settings people author, as text (learned numbers left out)."""
    if isinstance(policy, FixedPolicy):
        return "fixed", {"seed": policy.seed}
    if isinstance(policy, ThompsonPolicy):
        return "thompson", {"floor": f"{policy.floor:g}", "segments": ", ".join(policy.segments)}
    return "linear", {
        "features": ", ".join(policy.features),
        "exploration": policy.exploration.value,
        "temperature": f"{policy.temperature:g}",
        "gamma": f"{policy.gamma:g}",
        "floor": f"{policy.floor:g}",
        "cold start": "on" if policy.cold_start else "off",
    }


def policy_words(before: Site, after: Site) -> list[str]:
    """Sentences for the policies a draft changes, per slot both sites have: a new kind with its
    settings, or the settings that moved ("recs: policy gamma 10 (was 40).")."""
    old = {slot.name: _settings(slot.policy) for slot in before.slots}
    lines = []
    for slot in after.slots:
        if slot.name not in old:
            continue
        (was, then), (kind, now) = old[slot.name], _settings(slot.policy)
        if kind != was:
            shown = "; ".join(f"{k} {v}" for k, v in now.items() if v != "")
            lines.append(f"{slot.name}: the policy is now {kind} (was {was}): {shown}.")
            continue
        moved = [
            f"{k} {v or 'none'} (was {then[k] or 'none'})" for k, v in now.items() if v != then[k]
        ]
        if moved:
            lines.append(f"{slot.name}: policy {'; '.join(moved)}.")
    return lines


def _users_of(site: Site, audience: str) -> str:
    """Which slots' rules and policy segments name ``audience`` ("" when none)."""
    rules = sorted({s.name for s in site.slots for r in s.rules if r.audience == audience})
    segments = sorted(
        s.name
        for s in site.slots
        if isinstance(s.policy, ThompsonPolicy) and audience in s.policy.segments
    )
    parts = []
    if rules:
        parts.append(f"the rules of {', '.join(rules)}")
    if segments:
        parts.append(f"the policy segments of {', '.join(segments)}")
    return " and ".join(parts)


def audience_words(before: Site, after: Site) -> list[str]:
    """Sentences for the audiences a draft adds, removes or whose condition it changes, with
    the old and new condition and the slots whose rules (or segments) use the audience: who is
    in an audience decides what its rules show, which ``origin.diff``'s allocations miss."""
    old = {a.name: a for a in before.audiences}
    new = {a.name: a for a in after.audiences}
    lines = []
    for name in sorted(new.keys() - old.keys()):
        used = _users_of(after, name)
        tail = f"; used by {used}" if used else ""
        lines.append(f"New audience {name}: {condition_text(new[name].condition)}{tail}.")
    for name in sorted(old.keys() - new.keys()):
        lines.append(f"Audience {name} removed (was {condition_text(old[name].condition)}).")
    for name in sorted(old.keys() & new.keys()):
        if old[name].condition == new[name].condition:
            continue
        used = _users_of(after, name)
        who = f"{used} use it, so who they apply to changes" if used else "nothing uses it"
        lines.append(
            f"Audience {name}: condition changed from {condition_text(old[name].condition)} "
            f"to {condition_text(new[name].condition)}; {who}."
        )
    return lines


LIVE_TTL = 10.0  # seconds a reading of the targets' pointers is reused (wrangler takes ~1 s)


@dataclass(frozen=True)
class Live:
    """What is actually live, read from the targets' ``snap/current`` and the registry, next to
    the snapshot the config HEAD was compiled to. Something else publishing to the same target
    (``make dev FRESH=1`` publishes the sample fixture again) makes them differ."""

    head: str | None  # the config version HEAD
    compiled: str | None  # the snapshot HEAD was compiled to (None: not known)
    registry: str | None  # the registry's pointer
    targets: tuple[tuple[str, str | None], ...]  # (target, its snap/current; None: unreadable)

    @property
    def serving(self) -> str | None:
        """The snapshot the edge serves: the first target read, else the registry's pointer."""
        read = [sid for _, sid in self.targets if sid]
        return read[0] if read else self.registry

    @property
    def where(self) -> str:
        read = [name for name, sid in self.targets if sid]
        return read[0] if read else "the registry"

    @property
    def matches(self) -> bool:
        """Whether the edge serves what HEAD was compiled to (then the home page says so)."""
        return self.compiled is not None and self.serving == self.compiled

    def warnings(self) -> list[str]:
        out = []
        serving = self.serving
        if self.compiled and serving and serving != self.compiled:
            out.append(
                f"{self.where} serves snapshot {serving}, not {self.compiled}, the one the live "
                f"config version {self.head} was compiled to: something else published there "
                "(`make dev FRESH=1` publishes the sample fixture again). Drafts are compared "
                f"against {serving}, what visitors get now. To serve {self.compiled} again, "
                "roll back to it (History)."
            )
        elif self.head and not self.compiled:
            out.append(
                f"No snapshot is known to be compiled from the live config version {self.head} "
                f"(it was seeded while another was live): the edge serves {serving or 'nothing'}."
            )
        read = {sid for _, sid in self.targets if sid}
        if len(read) > 1:
            shown = ", ".join(f"{name}: {sid or '?'}" for name, sid in self.targets)
            out.append(f"The targets serve different snapshots ({shown}).")
        if serving and self.registry and serving != self.registry:
            out.append(
                f"The registry's pointer is {self.registry}, but {self.where} serves {serving}."
            )
        unread = [name for name, sid in self.targets if sid is None]
        if unread:
            out.append(f"Could not read what {', '.join(unread)} serves (snap/current).")
        return out


@dataclass(frozen=True)
class Review:
    """A draft's site and the one it is compared with (``against`` says which, in words)."""

    before: Site | None
    after: Site
    against: str

    def contents(self) -> list[ContentChange]:
        return content_changes(self.before, self.after)


@dataclass(frozen=True)
class ContentChange:
    """A variant whose content is new or changed: old (None: a new variant) and new, and the
    two side by side by line (kind: equal, replace, delete, insert)."""

    slot: str
    variant: str
    old: str | None
    new: str
    rows: tuple[tuple[str, str, str], ...]


def side_by_side(old: str, new: str) -> tuple[tuple[str, str, str], ...]:
    """Rows of (kind, old line, new line), lined up by ``difflib``."""
    a, b = old.splitlines() or [""], new.splitlines() or [""]
    rows: list[tuple[str, str, str]] = []
    for kind, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        left, right = a[i1:i2], b[j1:j2]
        for k in range(max(len(left), len(right))):
            rows.append(
                (kind, left[k] if k < len(left) else "", right[k] if k < len(right) else "")
            )
    return tuple(rows)


def content_changes(before: Site | None, after: Site) -> list[ContentChange]:
    """Every variant ``after`` adds or whose content (HTML, or a page slot's origin path) it
    changes, with the old content and the new: what an approver approves."""
    old = {(s.name, v.id): v.content for s in (before.slots if before else ()) for v in s.variants}
    out = []
    for slot in after.slots:
        for variant in slot.variants:
            was = old.get((slot.name, variant.id))
            if was == variant.content:
                continue
            rows = side_by_side(was or "", variant.content)
            out.append(ContentChange(slot.name, variant.id, was, variant.content, rows))
    return out


def read_current(target: Target) -> str | None:
    """A target's ``snap/current`` (None: it cannot be read, or holds none)."""
    get = getattr(target, "get", None)
    if get is None:
        return None
    try:
        value = get(CURRENT_KEY)
    except Exception:  # a target that cannot be read is reported, never fatal for a page
        return None
    if not isinstance(value, bytes | str):
        return None
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    return text.strip() or None


@dataclass
class Workspace:
    registry: Registry
    home: Path
    targets: Sequence[Target]
    model_path: Path | None = None

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # one publish or rollback at a time: the check that a draft starts from HEAD and the
        # move of HEAD must not interleave with another's
        self.lock = threading.Lock()
        self.versions = Versions(self.registry)
        self.drafts = Drafts(self.home / "drafts")
        self.accounts = Accounts(self.home / "users.json")
        self._live: tuple[float, Live] | None = None

    # ------------------------------------------------------------ reading

    def audit(self, action: str, user: User | str, why: str, **fields: Any) -> None:
        name = user if isinstance(user, str) else user.name
        self.registry.audit(action, author=name, reason=why, **fields)

    def head(self) -> tuple[str, dict[str, Any]]:
        vid = self.versions.head()
        if vid is None:
            raise WorkflowError(
                "no config version yet: seed one with `edgepick push SITE.toml` or start the "
                "workspace with --config SITE.toml"
            )
        return vid, self.versions.get(vid)

    def seed(self, config: dict[str, Any], author: str, source: str, text: str = "") -> str | None:
        """Make ``config`` the first version when there is none (the compiler must accept it);
        ``text``: the TOML it was read from, kept for ``pull``."""
        if self.versions.head() is not None:
            return None
        compile_site(config, None, source)
        vid = self.versions.put(config)
        if text:
            self.versions.keep_text(vid, text)
        live = self.registry.current()
        # linked to the live snapshot when that is this config compiled (ids are content hashes)
        same = (
            live is not None and decode_header(encode_snapshot(self.compile(config)))[0].id == live
        )
        self.versions.move(vid, "seed", author, f"seeded from {source}", live or "" if same else "")
        self.audit("config-seed", author, f"seeded from {source}", version=vid)
        return vid

    def live(self, max_age: float = LIVE_TTL) -> Live:
        """What is live at the targets and the registry, and what HEAD was compiled to (the
        targets are read again after ``max_age`` seconds, and after a publish or rollback)."""
        now = time.monotonic()
        if self._live is not None and now - self._live[0] <= max_age:
            return self._live[1]
        head = self.versions.head()
        log = self.versions.log()
        compiled = (log[0].get("snapshot") or None) if log and log[0]["id"] == head else None
        found = Live(
            head,
            compiled,
            self.registry.current(),
            tuple((t.name, read_current(t)) for t in self.targets),
        )
        self._live = (now, found)
        return found

    def forget_live(self) -> None:
        self._live = None

    def live_blob(self) -> tuple[str, bytes] | None:
        """The snapshot actually served (``live().serving``), from the registry or, when the
        registry does not have it, from the target serving it."""
        live = self.live()
        sid = live.serving
        if sid is None:
            return None
        try:
            return sid, self.registry.get(sid)
        except RegistryError:
            pass
        for target in self.targets:
            get = getattr(target, "get", None)
            try:
                blob = get(blob_key(sid)) if get is not None else None
            except Exception:
                blob = None
            if isinstance(blob, bytes):
                return sid, blob
        current = self.registry.current()
        return (current, self.registry.get(current)) if current else None

    def model(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The live snapshot's learned model (``models/<id>.json``, as sync saves it), else the
        workspace's ``--model``; pruned to ``config``."""
        current = self.registry.current()
        learned = self.registry.root / "models" / f"{current}.json"
        if current and learned.exists():
            found: dict[str, Any] = json.loads(learned.read_text())
        elif self.model_path is not None:
            found = load_model(self.model_path)
        else:
            return None
        return prune_model(found, config)

    def compile(self, config: Mapping[str, Any]) -> Site:
        applied = self.registry.overrides.apply(config)
        return compile_site(applied, self.model(applied), "draft")

    def review(self, draft: Draft) -> Review:
        """What a draft is compared with. An open draft: its config compiled, against the
        snapshot actually served now (``live_blob``: the targets' pointer, which something
        else may have moved). A published draft: the snapshot it was published as, against
        the one live just before (its header's parent), so its page still says what it
        changed."""
        if draft.status == "published" and draft.snapshot:
            try:
                blob = self.registry.get(draft.snapshot)
            except RegistryError:
                blob = None
            if blob is not None:
                after = decode_snapshot(blob).site
                parent = decode_header(blob)[0].parent
                try:
                    before = decode_snapshot(self.registry.get(parent)).site if parent else None
                except RegistryError:
                    before = None
                label = (
                    f"snapshot {parent}, live before this draft was published as {draft.snapshot}"
                    if parent
                    else f"nothing (it was published as {draft.snapshot}, the first snapshot)"
                )
                return Review(before, after, label)
        site = self.compile(draft.config)
        live = self.live_blob()
        if live is None:
            return Review(None, site, "nothing: no snapshot is published yet")
        state = self.live()
        label = f"snapshot {live[0]}, served now ({state.where})"
        if state.compiled and live[0] != state.compiled:
            label += (
                f": not {state.compiled}, the snapshot the draft's live config version was "
                "compiled to"
            )
        return Review(decode_snapshot(live[1]).site, site, label)

    def changes(self, draft: Draft, review: Review | None = None) -> list[str]:
        """What the draft changes for visitors (``review``: against what), in words."""
        found = review or self.review(draft)
        before, site = found.before, found.after
        if before is None:
            return ["Nothing is published yet: this will be the first snapshot."]
        lines = (
            audience_words(before, site)
            + policy_words(before, site)
            + diff.words(diff.for_visitors(before, site))
        )
        return lines or ["Nothing changes for visitors."]

    # ------------------------------------------------------------ writing

    def start(self, user: User, title: str) -> Draft:
        vid, config = self.head()
        draft = self.drafts.create(title, user, vid, config)
        self.audit("draft-create", user, title, draft=draft.id, base=vid)
        return draft

    def step(self, draft: Draft, user: User, step: str, why: str, publish_at: int = 0) -> Draft:
        if step in ("submit", "approve", "schedule") and self.versions.head() != draft.base:
            # the page offers only Discard then; a page opened before HEAD moved may still post
            raise WorkflowError(
                f"the live config changed since this draft started (now "
                f"{self.versions.head()}, draft from {draft.base}): it can only be discarded"
            )
        done = self.drafts.step(draft, user, step, why, publish_at)
        extra = {"publish_at": publish_at} if step == "schedule" else {}
        self.audit(f"draft-{step}", user, why, draft=draft.id, **extra)
        return done

    def publish(self, draft: Draft, user: User, why: str) -> Published:
        with self.lock:
            return self._publish(self.drafts.get(draft.id), user, why)

    def _publish(self, draft: Draft, user: User, why: str) -> Published:
        if not user.can("approver"):
            raise Forbidden(f"{user.name} is {a_role(user.role)}: only an approver may publish")
        if draft.status != "approved":
            raise WorkflowError(f"cannot publish draft {draft.id}: it is {draft.status}")
        head = self.versions.head()
        if head != draft.base:
            raise WorkflowError(
                f"the live config changed since this draft started (now {head}, draft from "
                f"{draft.base}): discard it and start a new draft from the live config"
            )
        applied = self.registry.overrides.apply(draft.config)
        model = self.model(applied)
        site = compile_site(applied, model, f"draft {draft.id}")
        note = f"{draft.title} ({draft.id}): {why}" if why else f"{draft.title} ({draft.id})"
        blob = encode_snapshot(
            site,
            parent=self.registry.current() or "",
            created=int(time.time()),
            author=user.name,
            message=note,
        )
        done = publish(blob, self.targets, self.registry, author=user.name, note=note)
        if model is not None:  # what the next publish (and sync's paused slots) build on
            learned = self.registry.root / "models" / f"{done.header.id}.json"
            write_atomic(learned, json.dumps(model, sort_keys=True).encode())
        vid = self.versions.put(draft.config)
        self.versions.move(vid, "publish", user.name, why, snapshot=done.header.id)
        self.forget_live()
        lifted = self.registry.overrides.resume(pin=True)
        if lifted:
            self.audit("resume", user, "a workspace publish lifts the pin", lifted=lifted)
        self.drafts.published(draft, user, why, done.header.id)
        self.audit("draft-publish", user, why, draft=draft.id, snapshot=done.header.id, version=vid)
        return done

    def rollback(self, snapshot: str, user: User, why: str) -> Published:
        with self.lock:
            return self._rollback(snapshot, user, why)

    def _rollback(self, snapshot: str, user: User, why: str) -> Published:
        if not user.can("approver"):
            raise Forbidden(f"{user.name} is {a_role(user.role)}: only an approver may roll back")
        sid = self.registry.resolve(snapshot)
        done = rollback(self.registry, sid, self.targets, author=user.name)
        self.forget_live()
        reason = why or f"rollback from {done.previous or '-'}"
        self.registry.overrides.set_pin(sid, user.name, reason)
        self.audit("pin", user, reason, id=sid)
        vid = self.versions.of_snapshot(sid)
        if vid is not None:
            self.versions.move(vid, "rollback", user.name, reason, snapshot=sid)
        self.audit("workspace-rollback", user, reason, snapshot=sid, version=vid or "")
        return done

    def publish_due(self, now: int) -> list[str]:
        """Publish every approved draft whose scheduled time has come; the ids published (a
        draft that fails is audit-logged with its error and unscheduled)."""
        done = []
        for draft in self.drafts.due(now):
            approver = self.accounts.get(draft.approver) or User(draft.approver, "approver")
            try:
                self.publish(draft, approver, "scheduled publish")
            except (WorkflowError, ValueError, RuntimeError) as exc:
                draft.publish_at = 0
                self.drafts.save(draft)
                self.audit("draft-schedule-failed", approver, str(exc), draft=draft.id)
                continue
            done.append(draft.id)
        return done
