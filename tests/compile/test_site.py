from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from compile.problems import ConfigError
from compile.site import compile_site, load_model, load_toml
from core.model import FixedPolicy, LinearPolicy, ThompsonPolicy
from tests.conftest import FIXTURES


@pytest.fixture()
def config() -> dict[str, Any]:
    return tomllib.loads((FIXTURES / "site.toml").read_text())


def problems_of(config: dict[str, Any], model: dict[str, Any] | None = None) -> dict[str, Any]:
    with pytest.raises(ConfigError) as info:
        compile_site(config, model)
    return {p.path: p for p in info.value.problems}


def test_fixture_is_a_realistic_store(config: dict[str, Any]) -> None:
    site = compile_site(config, load_model(FIXTURES / "model.json"))
    assert len(site.slots) >= 5
    assert {s.granularity.value for s in site.slots} == {"page", "component", "element"}
    assert sum(len(s.variants) for s in site.slots) >= 30
    assert len(site.audiences) >= 8
    assert {type(s.policy) for s in site.slots} == {FixedPolicy, ThompsonPolicy, LinearPolicy}
    assert site.holdout > 0 and site.signals.categories


def test_model_weights_are_merged_by_variant_id(config: dict[str, Any]) -> None:
    site = compile_site(config, {"slots": {"headline": {"weights": {"hl-members": 0.9}}}})
    headline = next(s for s in site.slots if s.name == "headline")
    assert isinstance(headline.policy, ThompsonPolicy)
    assert headline.policy.weights == (0.0, 0.0, 0.0, 0.0, 0.9, 0.0)


def test_authored_scores_become_arm_weights(config: dict[str, Any]) -> None:
    site = compile_site(config)
    hero = next(s for s in site.slots if s.name == "hero")
    assert isinstance(hero.policy, LinearPolicy)
    col = hero.policy.features.index("affinity:running")
    assert hero.policy.arms[1].weights[col] == 0.12


def test_every_problem_is_reported_at_once_with_path_and_value(config: dict[str, Any]) -> None:
    bad = copy.deepcopy(config)
    bad["slots"]["hero"]["variants"][2]["weight"] = -1
    bad["slots"]["hero"]["variants"][3]["status"] = "live"
    bad["slots"]["hero"]["variants"][4]["id"] = bad["slots"]["hero"]["variants"][0]["id"]
    bad["slots"]["cta"]["default"] = "cta-missing"
    bad["slots"]["promo"]["rules"][0]["audience"] = "martians"
    bad["slots"]["hero"]["policy"]["features"].append("colour:red")
    bad["audiences"]["mobile"]["condition"] = {
        "device": {"$regex": "(unclosed"},
        "os": {"$nope": 1},
    }
    bad["site"]["holdout"] = 0.9
    bad["slots"]["recs"]["surprise"] = True
    found = problems_of(bad)
    expected = {
        "slots.hero.variants[2].weight": -1,
        "slots.hero.variants[3].status": "live",
        "slots.hero.variants[4].id": "hero-brand",
        "slots.cta.default": "cta-missing",
        "slots.promo.rules[0].audience": "martians",
        "slots.hero.policy.features[15]": "colour:red",
        "audiences.mobile.condition.device.$regex": "(unclosed",
        "audiences.mobile.condition.os.$nope": 1,
        "site.holdout": 0.9,
    }
    for path, value in expected.items():
        assert path in found, (path, sorted(found))
        assert found[path].value == value
    assert "slots.recs.surprise" in found
    message = str(ConfigError(list(found.values())))
    assert "slots.hero.variants[2].weight: must be between 0.0 and None (got -1)" in message


def test_missing_sections_and_wrong_types(config: dict[str, Any]) -> None:
    found = problems_of({"slots": {"a": {"variants": [{"id": 3}]}}})
    assert "site" in found
    assert found["slots.a.variants[0].id"].message == "expected a string"
    assert "slots.a.variants[0].content" in found


def test_page_slots_need_paths_and_origin_paths(config: dict[str, Any]) -> None:
    bad = copy.deepcopy(config)
    del bad["slots"]["landing"]["paths"]
    bad["slots"]["landing"]["variants"][1]["path"] = "landing/outdoor"
    found = problems_of(bad)
    assert "slots.landing.paths" in found
    assert found["slots.landing.variants[1].path"].value == "landing/outdoor"


def test_model_problems_are_reported(config: dict[str, Any]) -> None:
    found = problems_of(
        config,
        {
            "slots": {
                "ghost": {},
                "headline": {"weights": {"hl-nope": 1, "hl-classic": "high"}},
                "hero": {"arms": {"hero-brand": {"bias": "x", "weights": {"colour": 1}}}},
            }
        },
    )
    assert "model.slots.ghost" in found
    assert "model.slots.headline.weights.hl-nope" in found
    assert found["model.slots.headline.weights.hl-classic"].value == "high"
    assert found["model.slots.hero.arms.hero-brand.bias"].value == "x"
    assert "model.slots.hero.arms.hero-brand.colour" in found


def test_bad_files_are_config_errors(tmp_path: Any) -> None:
    broken = tmp_path / "site.toml"
    broken.write_text("[site\nname = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(broken)
    with pytest.raises(ConfigError, match="file not found"):
        load_toml(tmp_path / "missing.toml")
    model = tmp_path / "model.json"
    model.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_model(model)


def test_names_that_become_headers_are_checked(config: dict[str, Any]) -> None:
    bad = copy.deepcopy(config)
    bad["slots"]["hero banner"] = bad["slots"].pop("cta")
    bad["slots"]["hero"]["variants"][1]["id"] = "ä-主页"
    found = problems_of(bad)
    assert "slots.hero banner" in found
    assert found["slots.hero.variants[1].id"].value == "ä-主页"


def test_a_regex_a_visitor_could_make_backtrack_is_refused_naming_the_audience(
    config: dict[str, Any],
) -> None:
    config["audiences"]["mobile"]["condition"] = {"path": {"$regex": "(/[a-z]+)*/checkout$"}}
    found = problems_of(config)
    problem = found["audiences.mobile.condition.path.$regex"]
    assert "backtrack" in problem.message and problem.value == "(/[a-z]+)*/checkout$"
    assert "audiences.mobile" in str(ConfigError(list(found.values())))


def test_typed_saved_groups_compile_and_target(config: dict[str, Any]) -> None:
    from core.engine import Engine
    from core.snapshot import decode_snapshot, encode_snapshot

    config["saved_groups"] |= {
        "nordics": {"type": "list", "values": ["SE", "DK", "FI"], "attributeKey": "country"},
        "loyal": {"type": "condition", "condition": {"visits": {"$gte": 5}}},
        "legacy": ["x"],
    }
    config["audiences"]["mobile"]["condition"] = {
        "$savedGroup": {"id": "nordics"},
        "$and": [{"$savedGroup": {"id": "loyal"}}],
    }
    site = decode_snapshot(encode_snapshot(compile_site(config, None))).site
    nordics = site.saved_groups["nordics"]
    assert isinstance(nordics, dict) and nordics["values"] == ["SE", "DK", "FI"]
    Engine.from_site(site)  # prepares, typed groups included
    from core.conditions import evaluate

    condition = site.audiences[[a.name for a in site.audiences].index("mobile")].condition
    assert evaluate(condition, {"country": "SE", "visits": 7}, site.saved_groups)
    assert not evaluate(condition, {"country": "DE", "visits": 7}, site.saved_groups)


def test_saved_group_mistakes_are_reported(config: dict[str, Any]) -> None:
    config["saved_groups"] |= {
        "bad": {"type": "list", "values": "SE"},
        "weird": {"type": "later"},
        "cond": {"type": "condition", "condition": {"x": {"$nope": 1}}},
    }
    config["audiences"]["mobile"]["condition"] = {"$savedGroup": {"id": "nowhere"}}
    found = problems_of(config)
    assert "saved_groups.bad.values" in found
    assert "saved_groups.weird" in found
    assert "saved_groups.cond.condition.x.$nope" in found
    assert found["audiences.mobile.condition.$savedGroup.id"].message == "unknown saved group"
