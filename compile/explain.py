"""Human-readable explanations of decisions (``edgepick explain``, ``make demo``)."""

from __future__ import annotations

from core.decide import Decision
from core.engine import Engine
from core.features import RequestContext, VisitorState, attributes
from core.predicates import compile_predicates


def explain(
    engine: Engine,
    state: VisitorState,
    context: RequestContext,
    now: int,
    decisions: list[Decision],
) -> str:
    site = engine.site
    attrs = attributes(state, context, now, site.signals)
    predicates = compile_predicates(
        {a.name: a.condition for a in site.audiences}, site.saved_groups
    )
    matched = [name for name, pred in predicates.items() if pred(attrs)]
    lines = [
        f"visitor {state.visitor_id}: visits={state.visits} stage={state.stage or '-'} "
        f"top category={attrs['topCategory'] or '-'}; {context.device} from "
        f"{context.country or '??'} via {context.referrer}, path {context.path}",
        f"audiences matched: {', '.join(matched) or 'none'}",
    ]
    for d in decisions:
        prepared = engine.slots[d.slot]
        lines.append(
            f"  [{d.slot}] -> {d.variant}  (p={d.propensity:.4f}, {d.reason.value}, "
            f"{d.policy}, decision {d.decision_id})"
        )
        lines.extend(f"      {step}" for step in d.trail)
        ranked = sorted(((p, i) for i, p in enumerate(d.probabilities) if p > 0), reverse=True)
        if len(ranked) > 1:
            shown = []
            for p, i in ranked:
                score = f" s={d.scores[i]:+.3f}" if d.scores else ""
                shown.append(f"{prepared.ids[i]} {p:.3f}{score}")
            lines.append("      eligible: " + ", ".join(shown))
    return "\n".join(lines)
