"""The Open Bandit Dataset sample (ZOZOTOWN; Saito et al. 2021, "Open Bandit Dataset and
Pipeline", NeurIPS Datasets and Benchmarks) read from the ``obp`` 0.5.7 source archive.

The archive (``pip download --no-deps --ignore-requires-python obp==0.5.7 -d build/obd``; it is
an sdist, ``obp-0.5.7.tar.gz``, whose metadata says Python < 3.11, hence the flag; obp is never
installed) contains ``obp/dataset/obd/{random,bts}/all/all.csv``: 10,000 logged impressions
each, 80 fashion items (arms) shown in 3 positions, a click (0/1), the logging policy's
propensity, four hashed categorical user features and 80 user-item affinities. ``random``
logs come from the uniform policy (propensity 1/80 = 0.0125 on every row); ``bts`` from
Bernoulli Thompson sampling.

What is computed here (``edgepick evaluate --obd build/obd``):

1. **Plumbing check**: IPS of the uniform policy on the random logs has every weight
   ``w_i = (1/80) / 0.0125 = 1`` and must equal the logs' click-through rate exactly.
2. **The project's policies**, learned from the first half of the random logs (in time order)
   and evaluated on the second half with IPS, SNIPS and DR (bootstrap 95% intervals):

   * ``thompson``: the origin learner's Beta posteriors -> P(best) allocation
     (``origin.learn.thompson_weights``), served through ``core.policies`` with a 5% floor;
   * ``linear``: per-item ridge models over one-hot user features and the position
     (``origin.learn.linear_models``, shrunk toward the pooled model) served by the core's
     softmax at temperature 0.01 with a 5% floor (``core.policies.PreparedLinear``);
   * ``uniform``: the logging policy itself, for reference.

Positions are pooled: an action is the item, the context includes the position. DR's reward
model is per-item click rates shrunk toward the pooled rate (cross-fitted, no context).

3. **The check that can fail** (``bts_check``; the one practitioners use, Saito et al. 2021
   section 5): the Bernoulli Thompson sampling policy that logged the ``bts`` data is evaluated
   *off-policy* on the ``random`` logs and compared with its *on-policy* click-through rate in
   the ``bts`` logs (the mean click, which is its true value up to sampling noise). Its action
   probabilities are those ZOZOTOWN used: every impression draws ``theta_a ~ Beta(alpha_a,
   beta_a)`` for the 80 items with the production prior shipped in the archive
   (``obp/policy/conf/prior_bts.yaml``), ranks them, and shows the top three in positions 1-3,
   so ``pi_BTS(a | position k) = P(item a has rank k)``, computed by Monte Carlo
   (``bts_action_dist``, 100,000 draws as obp's ``compute_batch_action_dist``; standard error
   at most ``sqrt(p(1-p)/n_sim)``). That prior is the policy at the *start* of the week: BTS was
   updated while it logged (one item at one position carries up to hundreds of distinct logged
   propensities), so a second target is its week-average behaviour, the item frequencies per
   position in the ``bts`` logs (``bts_frequencies``). The policy ignores the user, so the
   target for a random-log row at position ``k`` is the column ``pi(. | k)`` and
   ``w_i = pi(a_i | k_i) / (1/80)``. The check: whether each off-policy 95% bootstrap interval
   (IPS, SNIPS, DR) covers the on-policy CTR. Each campaign (``all``, ``men``, ``women``; 10,000
   rows per policy) is checked separately.
"""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.model import (
    Exploration,
    Granularity,
    LinearArm,
    LinearPolicy,
    Slot,
    ThompsonPolicy,
    Variant,
)
from core.policies import prepare
from origin.aggregates import Aggregates
from origin.learn import LearnConfig, linear_models, thompson_weights
from origin.ope import Estimate, Logged, evaluate, on_policy, ridge_reward_model, uniform_target

MEMBER = "obp/dataset/obd/{policy}/{campaign}/{campaign}.csv"
USER_FEATURES = ("user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")
ITEMS = 80


class ObdMissing(FileNotFoundError):
    """The obp archive is not where it was looked for; the message says how to fetch it."""


def find_archive(where: Path) -> Path:
    """``where`` itself, or the obp 0.5.7 archive (sdist or wheel) inside that directory."""
    if where.is_file():
        return where
    for pattern in ("obp-0.5.7*.tar.gz", "obp-0.5.7*.whl", "obp-0.5.7*.zip"):
        found = sorted(where.glob(pattern))
        if found:
            return found[0]
    raise ObdMissing(
        f"no obp 0.5.7 archive in {where}: fetch it with "
        f"`pip download --no-deps --ignore-requires-python obp==0.5.7 -d {where}`"
    )


def _read_member(archive: Path, suffix: str) -> str:
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.name.endswith(suffix):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        return fh.read().decode()
    else:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(suffix):
                    return zf.read(name).decode()
    raise ObdMissing(f"{archive} has no member ending in {suffix}")


@dataclass(frozen=True, slots=True)
class ObdLog:
    policy: str
    items: np.ndarray  # item id per row (the action)
    positions: np.ndarray  # 1..3
    clicks: np.ndarray
    propensities: np.ndarray
    users: list[tuple[str, ...]]  # the four hashed user features
    timestamps: list[str]

    @property
    def n(self) -> int:
        return len(self.items)

    def rows(self, start: int, stop: int) -> ObdLog:
        s = slice(start, stop)
        return ObdLog(
            self.policy,
            self.items[s],
            self.positions[s],
            self.clicks[s],
            self.propensities[s],
            self.users[s],
            self.timestamps[s],
        )


def load(archive: Path, policy: str = "random", campaign: str = "all") -> ObdLog:
    """One logged data set, in time order."""
    text = _read_member(archive, MEMBER.format(policy=policy, campaign=campaign))
    records = list(csv.DictReader(io.StringIO(text)))
    records.sort(key=lambda r: r["timestamp"])
    return ObdLog(
        policy,
        np.asarray([int(r["item_id"]) for r in records]),
        np.asarray([int(r["position"]) for r in records]),
        np.asarray([float(r["click"]) for r in records]),
        np.asarray([float(r["propensity_score"]) for r in records]),
        [tuple(r[k] for k in USER_FEATURES) for r in records],
        [r["timestamp"] for r in records],
    )


def feature_names(train: ObdLog) -> list[str]:
    """One-hot names for the user feature values seen in training, plus the positions.

    They are spelled as core ``flag:`` features so the core's linear policy accepts them (the
    vectors are built here, not by the edge's extractors).
    """
    names: list[str] = []
    for k in range(len(USER_FEATURES)):
        for value in sorted({u[k] for u in train.users}):
            names.append(f"flag:u{k}={value[:8]}")
    names += ["flag:position=2", "flag:position=3"]
    return names


def contexts(log: ObdLog, names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    x = np.zeros((log.n, len(names)))
    for row, (user, pos) in enumerate(zip(log.users, log.positions, strict=True)):
        for k, value in enumerate(user):
            col = index.get(f"flag:u{k}={value[:8]}")
            if col is not None:
                x[row, col] = 1.0
        col = index.get(f"flag:position={pos}")
        if col is not None:
            x[row, col] = 1.0
    return x


def logged(log: ObdLog, names: list[str]) -> Logged:
    return Logged(log.items, log.clicks, log.propensities, contexts(log, names), ITEMS)


def _slot(policy: ThompsonPolicy | LinearPolicy) -> Slot:
    variants = tuple(Variant(id=f"item-{i}", content="") for i in range(ITEMS))
    return Slot("obd", Granularity.COMPONENT, "item-0", variants, policy)


def _aggregates(log: ObdLog, x: np.ndarray, width: int) -> Aggregates:
    agg = Aggregates({"obd": width})
    for item in range(ITEMS):
        rows = np.flatnonzero(log.items == item)
        feats: list[tuple[float, ...]] = [tuple(float(v) for v in x[r]) for r in rows]
        agg.stats("obd", f"item-{item}").add_block(feats, [float(log.clicks[r]) for r in rows])
    return agg


def thompson_target(train: ObdLog, n: int, seed: int = 0, floor: float = 0.05) -> np.ndarray:
    """The learner's P(best) allocation from ``train``, through the core (shape (n, 80))."""
    arms = _aggregates(train, np.zeros((train.n, 0)), 0).slot_arms("obd")
    weights = thompson_weights(
        _slot(ThompsonPolicy((1.0,) * ITEMS)),
        arms,
        LearnConfig(seed=seed),
        np.random.default_rng(seed),
    )
    policy = ThompsonPolicy(tuple(weights[f"item-{i}"] for i in range(ITEMS)), floor)
    probs = prepare(policy, "obd").score(range(ITEMS), (), False).probabilities
    return np.tile(np.asarray(probs), (n, 1))


def linear_target(
    train: ObdLog,
    test_x: np.ndarray,
    names: list[str],
    *,
    temperature: float = 0.01,
    floor: float = 0.05,
    ridge: float = 1.0,
) -> np.ndarray:
    """Per-item ridge over the user features, softmax-explored by the core (shape (n, 80))."""
    train_x = contexts(train, names)
    arms = _aggregates(train, train_x, len(names)).slot_arms("obd")
    blank = LinearPolicy(
        tuple(names), tuple(LinearArm(0.0, (0.0,) * len(names)) for _ in range(ITEMS))
    )
    models = linear_models(_slot(blank), arms, LearnConfig(ridge=ridge))
    policy = LinearPolicy(
        tuple(names),
        tuple(
            LinearArm(
                models[f"item-{i}"].bias, tuple(models[f"item-{i}"].weights[f] for f in names)
            )
            for i in range(ITEMS)
        ),
        Exploration.SOFTMAX,
        temperature=temperature,
        floor=floor,
    )
    prepared = prepare(policy, "obd")
    everything = range(ITEMS)
    return np.asarray(
        [prepared.score(everything, tuple(row), False).probabilities for row in test_x]
    )


BTS_PRIOR = "obp/policy/conf/prior_bts.yaml"
CAMPAIGNS = ("all", "men", "women")
POSITIONS = 3


def bts_prior(archive: Path, campaign: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """ZOZOTOWN's production Beta prior ``(alpha, beta)`` per item for a campaign.

    The file is a two-level YAML mapping of number lists (``campaign: alpha: - 47.0``); it is
    read line by line here, so no YAML library is needed."""
    text = _read_member(archive, BTS_PRIOR)
    values: dict[tuple[str, str], list[float]] = {}
    top = key = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("- "):
            values.setdefault((top, key), []).append(float(stripped[2:]))
        elif line.startswith(" "):
            key = stripped.rstrip(":")
        else:
            top = stripped.rstrip(":")
    alpha, beta = values.get((campaign, "alpha")), values.get((campaign, "beta"))
    if not alpha or not beta or len(alpha) != len(beta):
        raise ObdMissing(f"{archive}: no prior for campaign {campaign!r} in {BTS_PRIOR}")
    return np.asarray(alpha), np.asarray(beta)


def bts_action_dist(
    alpha: np.ndarray,
    beta: np.ndarray,
    *,
    positions: int = POSITIONS,
    n_sim: int = 100_000,
    seed: int = 0,
    chunk: int = 10_000,
) -> np.ndarray:
    """``P(item a is ranked k-th)`` under Bernoulli Thompson sampling, shape (items, positions).

    Each simulated impression draws ``theta ~ Beta(alpha, beta)`` per item and shows the
    ``positions`` largest in decreasing order (obp's ``BernoulliTS.select_action``); the
    frequencies over ``n_sim`` draws estimate the probabilities (each column sums to 1)."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(alpha), positions))
    done = 0
    while done < n_sim:
        size = min(chunk, n_sim - done)
        theta = rng.beta(alpha, beta, size=(size, len(alpha)))
        top = np.argsort(-theta, axis=1)[:, :positions]
        for k in range(positions):
            counts[:, k] += np.bincount(top[:, k], minlength=len(alpha))
        done += size
    result: np.ndarray = counts / n_sim
    return result


def bts_frequencies(log: ObdLog, items: int, positions: int = POSITIONS) -> np.ndarray:
    """How often the logging policy showed each item in each position, shape (items, positions)
    (each column sums to 1): the week-average behaviour of a policy that changed during it."""
    counts = np.zeros((items, positions))
    np.add.at(counts, (log.items, log.positions - 1), 1.0)
    result: np.ndarray = counts / np.maximum(counts.sum(axis=0), 1.0)
    return result


def bts_targets(
    archive: Path, campaign: str, bts_log: ObdLog, *, n_sim: int = 100_000, seed: int = 0
) -> dict[str, np.ndarray]:
    """The two readings of "the Bernoulli-TS policy", each shape (items, positions):

    * ``prior``: the production prior's rank probabilities (``bts_action_dist``), what obp's
      ``BernoulliTS(is_zozotown_prior=True)`` benchmark evaluates;
    * ``logged``: the BTS logs' own item frequencies per position (``bts_frequencies``). The
      BTS policy was updated during the week (its logged propensity for one item and position
      takes up to hundreds of distinct values), so the prior is its state at the start only.
    """
    alpha, beta = bts_prior(archive, campaign)
    return {
        "prior": bts_action_dist(alpha, beta, n_sim=n_sim, seed=seed),
        "logged": bts_frequencies(bts_log, len(alpha)),
    }


def bts_check(
    archive: Path,
    campaign: str = "all",
    *,
    resamples: int = 1000,
    seed: int = 0,
    n_sim: int = 100_000,
) -> dict[str, Any]:
    """The Bernoulli-TS policy's value estimated from the random logs against its on-policy
    CTR in the BTS logs (module docstring, item 3), for both targets of ``bts_targets``."""
    random_log = load(archive, "random", campaign)
    bts_log = load(archive, "bts", campaign)
    targets = bts_targets(archive, campaign, bts_log, n_sim=n_sim, seed=seed)
    items = targets["prior"].shape[0]
    logs = Logged(
        random_log.items,
        random_log.clicks,
        random_log.propensities,
        np.zeros((random_log.n, 0)),  # the policy ignores the user: no context needed
        items,
    )
    q = ridge_reward_model(logs, seed=seed)  # per-item click rates, cross-fitted
    truth = on_policy(bts_log.clicks, resamples=resamples, seed=seed)
    distinct: dict[tuple[int, int], set[float]] = {}
    for a, k, p in zip(bts_log.items, bts_log.positions, bts_log.propensities, strict=True):
        distinct.setdefault((int(a), int(k)), set()).add(float(p))
    out: dict[str, Any] = {}
    for name, dist in targets.items():
        target = dist[:, random_log.positions - 1].T  # row i: pi(. | the row's position)
        estimates = evaluate(logs, target, q, resamples=resamples, seed=seed)
        out[name] = {
            est: {
                **e.as_dict(),
                "covers_on_policy": e.covers(truth.value),
                "relative_error": abs(e.value - truth.value) / truth.value,
            }
            for est, e in estimates.items()
        }
    gap = 0.5 * np.abs(targets["prior"] - targets["logged"]).sum(axis=0)
    return {
        "campaign": campaign,
        "items": items,
        "random": {"rows": random_log.n, "clicks": int(random_log.clicks.sum())},
        "bts": {"rows": bts_log.n, "clicks": int(bts_log.clicks.sum())},
        "on_policy": truth.as_dict(),
        "prior_vs_logged_tv": [round(float(g), 4) for g in gap],
        "max_distinct_propensities": max(len(v) for v in distinct.values()),
        "targets": out,
    }


def _rows(estimates: dict[str, Estimate]) -> dict[str, Any]:
    return {k: e.as_dict() for k, e in estimates.items()}


def run(where: Path, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The plumbing check and the project's policies evaluated on the random logs."""
    archive = find_archive(where)
    random_log = load(archive, "random")
    bts_log = load(archive, "bts")
    names = feature_names(random_log)
    full = logged(random_log, names)
    plumbing = evaluate(full, uniform_target(full), resamples=resamples, seed=seed)
    half = random_log.n // 2
    train, test = random_log.rows(0, half), random_log.rows(half, random_log.n)
    test_logged = logged(test, names)
    targets = {
        "uniform (logging)": uniform_target(test_logged),
        "thompson": thompson_target(train, test.n, seed),
        "linear": linear_target(train, test_logged.contexts, names),
    }
    # DR's reward model: per-item click rates shrunk toward the pooled rate (no context): with
    # ~19 clicks in the evaluation half a contextual model only fits noise
    q = ridge_reward_model(
        Logged(test.items, test.clicks, test.propensities, np.zeros((test.n, 0)), ITEMS),
        seed=seed,
    )
    results = {
        name: _rows(evaluate(test_logged, pi, q, resamples=resamples, seed=seed))
        for name, pi in targets.items()
    }
    return {
        "archive": archive.name,
        "random": {
            "rows": random_log.n,
            "clicks": int(random_log.clicks.sum()),
            "ctr": float(random_log.clicks.mean()),
        },
        "bts": {
            "rows": bts_log.n,
            "clicks": int(bts_log.clicks.sum()),
            "ctr": float(bts_log.clicks.mean()),
            "on_policy": on_policy(bts_log.clicks, resamples=resamples, seed=seed).as_dict(),
        },
        "plumbing": {
            "on_policy_mean": float(full.rewards.mean()),
            "ips_uniform": plumbing["ips"].value,
            "max_weight_deviation": float(np.max(np.abs((1.0 / ITEMS) / full.propensities - 1.0))),
            "estimates": _rows(plumbing),
        },
        "split": {
            "train_rows": train.n,
            "test_rows": test.n,
            "test_clicks": int(test.clicks.sum()),
        },
        "features": len(names),
        "policies": results,
        "bts_check": [
            bts_check(archive, campaign, resamples=resamples, seed=seed) for campaign in CAMPAIGNS
        ],
    }


def describe(result: dict[str, Any]) -> str:
    r, b, p, s = result["random"], result["bts"], result["plumbing"], result["split"]
    lines = [
        f"Open Bandit Dataset sample ({result['archive']}): random logs {r['rows']} rows, "
        f"{r['clicks']} clicks (CTR {r['ctr']:.4%}); bts logs {b['rows']} rows, {b['clicks']} "
        f"clicks (CTR {b['ctr']:.4%})",
        f"plumbing: IPS(uniform | random logs) = {p['ips_uniform']:.6f}, on-policy mean = "
        f"{p['on_policy_mean']:.6f} (max |w - 1| = {p['max_weight_deviation']:.1e})",
        f"policies learned on the first {s['train_rows']} random rows, evaluated on the last "
        f"{s['test_rows']} ({s['test_clicks']} clicks):",
        f"{'policy':18} {'estimator':9} {'CTR':>8} {'95% interval':>20} {'width':>8} {'ESS':>8}",
    ]
    for name, ests in result["policies"].items():
        for est, e in ests.items():
            lines.append(
                f"{name:18} {est:9} {e['value']:8.4%} [{e['low']:7.4%}, {e['high']:7.4%}] "
                f"{e['width']:8.4%} {e['ess']:8.1f}"
            )
    lines.append(
        "Bernoulli TS evaluated on the random logs against its on-policy CTR in the BTS logs:"
    )
    for check in result.get("bts_check", []):
        truth, tv = check["on_policy"], check["prior_vs_logged_tv"]
        lines.append(
            f"  {check['campaign']}: on-policy CTR {truth['value']:.4%} [{truth['low']:.4%}, "
            f"{truth['high']:.4%}] ({check['bts']['clicks']} clicks in {check['bts']['rows']}); "
            f"prior vs logged behaviour, total variation per position {tv}"
        )
        for target, estimates in check["targets"].items():
            for est, e in estimates.items():
                verdict = "covers it" if e["covers_on_policy"] else "MISSES it"
                lines.append(
                    f"    {target:6} {est:6} {e['value']:8.4%} [{e['low']:7.4%}, "
                    f"{e['high']:7.4%}] ESS {e['ess']:7.1f}: {verdict}"
                )
    return "\n".join(lines)


def iter_members(archive: Path) -> Iterator[str]:
    """Names of the OBD CSV members in the archive (for diagnostics)."""
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            yield from (m.name for m in tar.getmembers() if "/obd/" in m.name)
    else:
        with zipfile.ZipFile(archive) as zf:
            yield from (n for n in zf.namelist() if "/obd/" in n)
