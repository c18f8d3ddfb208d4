"""The GrowthBook comparison keeps comparing the same thing: same variation for every visitor.

Its speed figures are the benchmark's (docs/benchmarks.md), not asserted here.
"""

from __future__ import annotations

from bench import vs_growthbook


def test_both_engines_put_every_visitor_in_the_same_variation() -> None:
    sides = vs_growthbook.Sides()
    chosen = [sides.ours(i) for i in range(vs_growthbook.VISITORS)]
    assert chosen == [sides.theirs_reused(i) for i in range(vs_growthbook.VISITORS)]
    assert chosen == [sides.ours_building(i) for i in range(vs_growthbook.VISITORS)]
    assert len(set(chosen)) == 4  # the split and the rules all show up, not one constant answer


def test_the_comparison_prints_per_evaluation_figures() -> None:
    result = vs_growthbook.interleaved(vs_growthbook.Sides(), rounds=3, per_round=20)
    assert set(result["median_us"]) == {
        "edgepick",
        "growthbook_reused",
        "growthbook_new",
        "edgepick_building_input",
        "growthbook_reused_building_input",
    }
    assert all(t > 0 for t in result["median_us"].values())
    assert result["speedup_vs_reused_instance"] > 0
