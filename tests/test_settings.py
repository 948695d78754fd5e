"""check_number and check_choice: the checks behind every setting's error message."""

from __future__ import annotations

import math

import pytest

from ssl_hybrid.settings import check_choice, check_number


@pytest.mark.parametrize(
    ("value", "options"),
    [(0, {"at_least": 0}), (0.5, {"above": 0, "below": 1}), (1, {"at_most": 1}), (3, {"integer": True}), (None, {"nullable": True})],
)
def test_numbers_within_their_bounds_pass(value, options):
    check_number("model.x", value, **options)


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (-1, {"at_least": 0}, "model.x must be a number >= 0, got -1"),
        (0.0, {"above": 0, "at_most": 1}, "model.x must be a number > 0 and <= 1, got 0.0"),
        (1.0, {"below": 1, "nullable": True}, "model.x must be a number < 1, or null, got 1.0"),
        (2.5, {"integer": True, "at_least": 1}, "model.x must be an integer >= 1, got 2.5"),
        ("abc", {}, "model.x must be a number, got 'abc'"),
        (True, {}, "model.x must be a number, got True"),
        (None, {"at_least": 0}, "model.x must be a number >= 0, got None"),
        (math.nan, {"at_least": 0}, "model.x must be a number >= 0, got nan"),
        (math.inf, {"at_least": 0}, "model.x must be a number >= 0, got inf"),  # int(inf) would raise OverflowError
    ],
)
def test_everything_else_is_refused_with_the_key_the_bounds_and_the_value(value, options, message):
    with pytest.raises(ValueError) as error:
        check_number("model.x", value, **options)
    assert str(error.value) == message


def test_a_choice_is_one_of_its_options_or_refused_naming_the_key_and_options():
    check_choice("model.classify_with", "graph", ("head", "generative", "graph"))
    check_choice("logger.wandb.mode", None, ("online", "offline"), nullable=True)
    with pytest.raises(ValueError, match=r"^model.classify_with must be one of \('head', 'graph'\), got 'Graph'$"):
        check_choice("model.classify_with", "Graph", ("head", "graph"))
    with pytest.raises(ValueError, match=r"^model.consistency_mask must be one of \('soft',\), got None$"):
        check_choice("model.consistency_mask", None, ("soft",))  # null only where nullable
    with pytest.raises(ValueError, match=r"^logger.wandb.mode must be one of \('online',\) or null, got 'of'$"):
        check_choice("logger.wandb.mode", "of", ("online",), nullable=True)
