"""The published JSON Schema agrees with the compiler on the fixture and on common mistakes."""

from __future__ import annotations

import copy
import json
import tomllib
from typing import Any

import jsonschema
import pytest

from cli.main import SCHEMA
from compile.problems import ConfigError
from compile.site import compile_site
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_fixture_is_valid(validator: jsonschema.Draft202012Validator) -> None:
    validator.validate(tomllib.loads((FIXTURES / "site.toml").read_text()))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["slots"]["hero"]["variants"][0].update(status="live"),
        lambda c: c["slots"]["hero"]["variants"][0].update(weight=-2),
        lambda c: c["slots"]["hero"].update(granularity="widget"),
        lambda c: c["slots"]["hero"]["policy"]["features"].append("colour:red"),
        lambda c: c["slots"]["promo"]["rules"][0].update(action="maybe"),
        lambda c: c["site"].update(holdout=0.9),
        lambda c: c.update(extras={}),
    ],
)
def test_schema_and_compiler_both_refuse(
    validator: jsonschema.Draft202012Validator, mutate: Any
) -> None:
    config = copy.deepcopy(tomllib.loads((FIXTURES / "site.toml").read_text()))
    mutate(config)
    assert list(validator.iter_errors(config))
    with pytest.raises(ConfigError):
        compile_site(config)
