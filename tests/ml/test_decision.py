"""The expected-value decision rule, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from backend.ml.decision import (
    EXPECTED_VALUE,
    THRESHOLD,
    break_even_probability,
    decide,
    decide_many,
    reward_risk,
)


def test_expected_value_by_hand() -> None:
    d = decide(0.4, reward_r=2.0)  # 0.4 * 2 - 0.6 * 1 = 0.2
    assert (d.take, d.rule, d.reward_r, d.risk_r) == (True, EXPECTED_VALUE, 2.0, 1.0)
    assert d.expected_r == pytest.approx(0.2)
    d = decide(0.4, reward_r=2.0, costs_r=0.1, margin_r=0.15)  # 0.1 <= 0.15
    assert not d.take and d.expected_r == pytest.approx(0.1)
    assert not decide(0.3, reward_r=2.0).take  # 0.6 - 0.7 < 0
    assert not decide(1 / 3, reward_r=2.0).take  # exactly break-even is not > margin


def test_threshold_override_names_its_rule() -> None:
    d = decide(0.4, reward_r=2.0, threshold=0.5)
    assert (d.take, d.rule) == (False, THRESHOLD)
    assert d.expected_r == pytest.approx(0.2)  # still reported
    assert decide(0.5, reward_r=0.5, threshold=0.5).take


def test_reward_risk_from_own_prices_or_barrier() -> None:
    assert reward_risk(100.0, side="long", stop_price=98.0, target_price=106.0) == (3.0, 1.0)
    assert reward_risk(100.0, side=-1, stop_price=101.0, target_price=98.5) == (1.5, 1.0)
    assert reward_risk(100.0, side="long", tp_atr=2.0, sl_atr=1.0) == (2.0, 1.0)
    assert reward_risk(100.0, side="short", stop_price=None, target_price=97.0,
                       tp_atr=3.0, sl_atr=1.5) == (2.0, 1.0)
    with pytest.raises(ValueError, match=r"^stop_price"):
        reward_risk(100.0, side="long", stop_price=101.0, target_price=106.0)
    with pytest.raises(ValueError, match=r"^target_price"):
        reward_risk(100.0, side="short", stop_price=101.0, target_price=102.0)
    with pytest.raises(ValueError, match=r"^side"):
        reward_risk(100.0, side="up")


def test_share_taken_follows_probability_and_reward_risk() -> None:
    p = np.random.default_rng(0).uniform(0.0, 1.0, 10_000)
    shares = {}
    for reward in (0.5, 1.0, 2.0, 3.0):
        taken, rule, ev = decide_many(p, reward)
        assert rule == EXPECTED_VALUE
        np.testing.assert_allclose(ev, p * reward - (1 - p))
        # exactly the probabilities above break-even: neither none nor all by construction
        np.testing.assert_array_equal(taken, p > break_even_probability(reward))
        shares[reward] = taken.mean()
    assert 0 < shares[0.5] < shares[1.0] < shares[2.0] < shares[3.0] < 1
    assert shares[2.0] == pytest.approx(2 / 3, abs=0.02)  # P(p > 1/3)
    costly, _, _ = decide_many(p, 2.0, costs_r=0.3, margin_r=0.2)
    assert costly.mean() == pytest.approx(1 - 1.5 / 3, abs=0.02)
    per_row, _, _ = decide_many(np.array([0.3, 0.3]), np.array([2.0, 3.0]))
    assert per_row.tolist() == [False, True]


@pytest.mark.parametrize(("kwargs", "field"), [({"prob": 1.5}, "prob"),
                                               ({"prob": 0.5, "reward_r": 0.0}, "reward_r")])
def test_bad_input(kwargs: dict, field: str) -> None:
    args = {"reward_r": 2.0} | kwargs
    with pytest.raises(ValueError, match=rf"^{field}"):
        decide(args.pop("prob"), **args)
