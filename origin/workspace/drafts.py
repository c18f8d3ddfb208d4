"""Drafts and their review: draft -> review -> approved -> published (or back to draft).

A draft is a whole site config under edit, started from the live config version (``base``).
Who may do what (``origin.workspace.accounts`` roles):

| step | from | to | who |
| --- | --- | --- | --- |
| edit | draft | draft | editor |
| submit | draft | review | editor |
| approve | review | approved | approver who neither started nor edited it |
| reject / reopen | review, approved | draft | approver (reject); editor (reopen) |
| schedule | approved | approved, with ``publish_at`` | approver |
| publish | approved | published | approver (or the scheduler when ``publish_at`` is due) |
| discard | draft, review, approved | discarded | editor |

Every step is recorded by the caller in the registry's audit log, with who, when and why.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from origin.registry import write_atomic
from origin.workspace.accounts import User

STATUSES = ("draft", "review", "approved", "published", "discarded")
DRAFT_ID = re.compile(r"^d-[0-9a-f]{8}$")


class WorkflowError(ValueError):
    """A step the draft's status or the user's role does not allow; the message says why."""


class Forbidden(WorkflowError):
    """A step the user's role does not allow (answered 403, naming the role needed)."""


class Conflict(WorkflowError):
    """The draft changed since the page the request came from was rendered."""


@dataclass
class Draft:
    id: str
    title: str
    author: str
    base: str  # the config version it started from
    config: dict[str, Any]
    created: int
    status: str = "draft"
    approver: str = ""
    publish_at: int = 0  # unix seconds; 0: not scheduled
    snapshot: str = ""  # once published
    history: list[dict[str, Any]] = field(default_factory=list)  # (ts, who, step, why)


class Drafts:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, did: str) -> Path:
        if not DRAFT_ID.match(did):
            raise WorkflowError(f"no draft {did!r}")
        return self.root / f"{did}.json"

    def create(self, title: str, author: User, base: str, config: dict[str, Any]) -> Draft:
        _need(author, "editor", "start a draft")
        draft = Draft(
            id=f"d-{secrets.token_hex(4)}",
            title=title.strip() or "untitled change",
            author=author.name,
            base=base,
            config=config,
            created=int(time.time()),
        )
        self._note(draft, author, "create", "")
        return self.save(draft)

    def current(self, did: str, rev: str) -> Draft:
        """The draft, if it is still as the page showed it: ``rev`` is the number of steps in
        its history then (a form's hidden field); otherwise ``Conflict``, so nobody edits an
        index that moved or approves content they have not seen."""
        draft = self.get(did)
        if rev != str(len(draft.history)):
            last = draft.history[-1] if draft.history else {}
            raise Conflict(
                f"draft {did} changed since this page was loaded ({last.get('who', '?')}: "
                f"{last.get('step', '?')} {last.get('why', '')}): reload it and redo your change"
            )
        return draft

    def save(self, draft: Draft) -> Draft:
        write_atomic(self._path(draft.id), json.dumps(asdict(draft), sort_keys=True).encode())
        return draft

    def get(self, did: str) -> Draft:
        path = self._path(did)
        if not path.exists():
            raise WorkflowError(f"no draft {did!r}")
        return Draft(**json.loads(path.read_text(encoding="utf-8")))

    def all(self) -> list[Draft]:
        found = [Draft(**json.loads(p.read_text())) for p in self.root.glob("d-*.json")]
        return sorted(found, key=lambda d: (-d.created, d.id))

    # ------------------------------------------------------------ steps

    def edit(self, draft: Draft, user: User, config: dict[str, Any], what: str) -> Draft:
        _need(user, "editor", "edit a draft")
        _status(draft, "edit", "draft")
        draft.config = config
        self._note(draft, user, "edit", what)
        return self.save(draft)

    def step(self, draft: Draft, user: User, step: str, why: str, publish_at: int = 0) -> Draft:
        """submit, approve, reject, reopen, schedule or discard (publishing is
        ``Workspace.publish``)."""
        if step == "submit":
            _need(user, "editor", "submit a draft")
            _status(draft, step, "draft")
            draft.status = "review"
        elif step == "approve":
            _need(user, "approver", "approve")
            _status(draft, step, "review")
            if user.name == draft.author:
                raise WorkflowError("the draft's author cannot approve it: ask another approver")
            if user.name in editors(draft):
                raise WorkflowError(
                    f"{user.name} edited this draft, so cannot approve it (nobody approves "
                    "their own change): ask an approver who did not edit it"
                )
            draft.status, draft.approver = "approved", user.name
        elif step == "reject":
            _need(user, "approver", "reject")
            _status(draft, step, "review", "approved")
            draft.status, draft.approver, draft.publish_at = "draft", "", 0
        elif step == "reopen":
            _need(user, "editor", "reopen a draft")
            _status(draft, step, "review", "approved")
            draft.status, draft.approver, draft.publish_at = "draft", "", 0
        elif step == "discard":
            _need(user, "editor", "discard a draft")
            _status(draft, step, "draft", "review", "approved")
            draft.status, draft.publish_at = "discarded", 0
        elif step == "schedule":
            _need(user, "approver", "schedule a publish")
            _status(draft, step, "approved")
            if publish_at <= int(time.time()):
                raise WorkflowError("publish_at: the time must be in the future")
            draft.publish_at = publish_at
        else:
            raise WorkflowError(f"unknown step {step!r}")
        self._note(draft, user, step, why)
        return self.save(draft)

    def published(self, draft: Draft, user: User, why: str, snapshot: str) -> Draft:
        draft.status, draft.snapshot, draft.publish_at = "published", snapshot, 0
        self._note(draft, user, "publish", why)
        return self.save(draft)

    def due(self, now: int) -> list[Draft]:
        return [d for d in self.all() if d.status == "approved" and 0 < d.publish_at <= now]

    @staticmethod
    def _note(draft: Draft, user: User, step: str, why: str) -> None:
        draft.history.append({"ts": int(time.time()), "who": user.name, "step": step, "why": why})


def editors(draft: Draft) -> set[str]:
    """Everyone who changed the draft's content: its author and anyone with an edit in its
    trail. None of them may approve it."""
    return {draft.author} | {h["who"] for h in draft.history if h.get("step") == "edit"}


def a_role(role: str) -> str:
    """``role`` with its article: "a viewer", "an editor", "an approver"."""
    return f"{'an' if role[:1] in 'aeiou' else 'a'} {role}"


def _need(user: User, role: str, what: str) -> None:
    if not user.can(role):
        raise Forbidden(f"{user.name} is {a_role(user.role)}: only {a_role(role)} may {what}")


def _status(draft: Draft, step: str, *allowed: str) -> None:
    if draft.status not in allowed:
        raise WorkflowError(
            f"cannot {step} draft {draft.id}: it is {draft.status} (needs {' or '.join(allowed)})"
        )
