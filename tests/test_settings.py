"""check_number: the one check behind every numeric setting's error message."""

from __future__ import annotations

import math

import pytest

from ssl_hybrid.settings import check_number


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
    ],
)
def test_everything_else_is_refused_with_the_key_the_bounds_and_the_value(value, options, message):
    with pytest.raises(ValueError) as error:
        check_number("model.x", value, **options)
    assert str(error.value) == message
