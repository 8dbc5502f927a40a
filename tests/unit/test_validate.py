"""shared/validate.py: what each check accepts, what it refuses, and what the message says."""

from __future__ import annotations

import numpy as np
import pytest

from shared import validate


@pytest.mark.parametrize("value, expected", [(4, 4), (4.0, 4), ("12", 12), (" -3 ", -3), (np.int64(7), 7)])
def test_integer_accepts_integral_values(value, expected):
    result = validate.integer(value, "steps")
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value", [True, 3.5, "abc", "", None, float("nan"), float("inf"), [1], "4.0"])
def test_integer_refuses_non_integers_and_names_the_input(value):
    with pytest.raises(ValueError, match=r"^steps must be an integer"):
        validate.integer(value, "steps")


def test_integer_range_is_inclusive_and_the_message_gives_it():
    assert validate.integer(1, "steps", 1, 50) == 1
    assert validate.integer(50, "steps", 1, 50) == 50
    with pytest.raises(ValueError, match=r"steps must be an integer from 1 to 50, got 51"):
        validate.integer(51, "steps", 1, 50)
    with pytest.raises(ValueError, match=r"seed must be an integer at least 0, got -1"):
        validate.integer(-1, "seed", lo=0)


@pytest.mark.parametrize("value, expected", [(2, 2.0), (2.5, 2.5), ("0.25", 0.25), (np.float32(1.5), 1.5)])
def test_number_accepts_real_numbers_and_numeric_text(value, expected):
    assert validate.number(value, "scale") == pytest.approx(expected)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf"), True, "abc", None, [1.0]])
def test_number_refuses_non_finite_and_non_numbers(value):
    with pytest.raises(ValueError, match=r"^scale must be a finite number"):
        validate.number(value, "scale")


def test_large_limits_print_in_full():
    with pytest.raises(ValueError, match=r"from 0 to 1000000, got 1000001"):
        validate.integer(1_000_001, "start index", 0, 1_000_000)


def test_number_bounds_open_and_closed():
    assert validate.number(0, "guidance", 0, 10) == 0.0
    with pytest.raises(ValueError, match=r"from 0 to 10, got 10.5"):
        validate.number(10.5, "guidance", 0, 10)
    with pytest.raises(ValueError, match=r"greater than 0 and at most 100, got 0"):
        validate.number(0, "scale", 0, 100, above=True)
    assert validate.number(1e-9, "scale", 0, 100, above=True) == pytest.approx(1e-9)


def test_choice_returns_the_option_or_lists_the_valid_ones():
    assert validate.choice("ddim", "scheduler", ("ddpm", "ddim")) == "ddim"
    assert validate.choice("b", "key", {"a": 1, "b": 2}) == "b"
    with pytest.raises(ValueError, match=r"unknown scheduler 'euler'; choose one of \['ddpm', 'ddim'\]"):
        validate.choice("euler", "scheduler", ("ddpm", "ddim"))
    with pytest.raises(ValueError, match="unknown scheduler"):
        validate.choice(["ddpm"], "scheduler", ("ddpm", "ddim"))  # unhashable input is not an option


def test_choices_dedupes_keeps_order_and_refuses_unknown_or_empty():
    assert validate.choices(["b", "a", "b"], "variants", "abc") == ["b", "a"]
    with pytest.raises(ValueError, match=r"unknown variants \['z'\]; choose from"):
        validate.choices(["a", "z"], "variants", "abc")
    with pytest.raises(ValueError, match="choose at least 1 variants"):
        validate.choices([], "variants", "abc")
    with pytest.raises(ValueError, match="must be a list"):
        validate.choices("a", "variants", "abc")
