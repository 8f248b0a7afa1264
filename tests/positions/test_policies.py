"""Exit policies on hand-made candle paths: every expected figure is worked out here."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from backend.positions import policies as P
from backend.positions.params import (
    AtrTrailingParams,
    BreakevenParams,
    CombinedParams,
    FixedParams,
    MlExitParams,
    PartialParams,
    TimeStopParams,
    make_params,
)
from backend.positions.state import (
    ExitDecision,
    PositionError,
    PositionState,
    observe,
    tighten_stop,
)
from tests.utils.market_data import from_bars
from tests.utils.paths import entry_time, mirror, with_history

ENTRY, STOP, TARGET = 100.0, 98.0, 104.0  # R = 2


def long_state(**kw) -> PositionState:
    values = {"side": "long", "entry_price": ENTRY, "entry_time": entry_time(),
              "initial_stop": STOP, "current_stop": STOP, "target": TARGET}
    return PositionState(**{**values, **kw})


def short_state(**kw) -> PositionState:
    values = {"side": "short", "entry_price": ENTRY, "entry_time": entry_time(),
              "initial_stop": 200 - STOP, "current_stop": 200 - STOP, "target": 200 - TARGET}
    return PositionState(**{**values, **kw})


def run(policy, state, candles, params, first_bar: int):
    """Evaluate bar by bar from ``first_bar``, applying stop moves as a caller would."""
    decisions = []
    for i in range(first_bar, len(candles)):
        window = candles.head(i + 1)
        d = policy(state, window, params)
        decisions.append(d)
        if d.action in ("exit",):
            break
        state = replace(observe(state, window), current_stop=d.stop,
                        partial_taken=state.partial_taken or d.action == "take_partial",
                        stop_reason=d.reason if d.action == "update_stop" else
                        state.stop_reason)
    return decisions


# Every bar's true range is exactly 2 (open inside the previous bar's range, +/-1 around
# the open), so ATR stays 2.0 until the wide bar at the end.
TRAIL_PATH = [(101.0, 102.0, 100.0, 101.0), (102.0, 103.0, 101.0, 102.0),
              (103.0, 104.0, 102.0, 103.0), (102.5, 103.5, 101.5, 102.5),
              (102.0, 103.0, 101.0, 102.0),
              # wide bar: ATR rises, so highest high - 2 ATR falls below the stop in force
              (102.0, 103.5, 100.25, 101.5)]


def test_trailing_stop_moves_only_in_the_trades_favour():
    candles = with_history(TRAIL_PATH)
    params = AtrTrailingParams(atr_mult=2.0, activation_r=0.0)
    decisions = run(P.atr_trailing, long_state(target=None), candles, params, first_bar=16)
    stops = [d.stop for d in decisions]
    # chandelier = highest high since entry - 2 * ATR(=2): 102-4 (= the initial stop),
    # 103-4, 104-4, then the highest high is unchanged -> same stop (hold)
    assert stops[:5] == [98.0, 99.0, 100.0, 100.0, 100.0]
    assert [d.action for d in decisions[:5]] == ["hold", "update_stop", "update_stop",
                                                 "hold", "hold"]
    assert decisions[1].reason == "trailing_stop"
    # the wide bar raises ATR to (13*2 + 3.25)/14: the chandelier would drop; the stop holds
    atr = (13 * 2.0 + 3.25) / 14
    assert 104.0 - 2 * atr < stops[4]
    assert decisions[5].action == "hold" and decisions[5].stop == stops[4]
    assert all(b >= a for a, b in itertools.pairwise(stops))


def test_tighten_stop_never_loosens():
    assert tighten_stop("long", 99.0, 98.0) == 99.0
    assert tighten_stop("long", 99.0, 99.5) == 99.5
    assert tighten_stop("short", 101.0, 102.0) == 101.0
    assert tighten_stop("short", 101.0, 100.5) == 100.5
    assert tighten_stop("long", 99.0, None) == 99.0
    assert tighten_stop("long", 99.0, float("nan")) == 99.0


def test_breakeven_fires_at_exactly_k_r_not_before():
    params = BreakevenParams(trigger_r=1.0, offset_r=0.0)  # +1 R = 102
    just_below = with_history([(100.5, 102.0 - 1e-9, 99.5, 101.0)])
    d = P.breakeven(long_state(), just_below, params)
    assert (d.action, d.stop) == ("hold", STOP)
    exactly = with_history([(100.5, 102.0, 99.5, 101.0)])
    d = P.breakeven(long_state(), exactly, params)
    assert (d.action, d.stop, d.reason) == ("update_stop", ENTRY, "breakeven")


def test_breakeven_offset_and_immediate_exit_when_the_close_is_below_the_new_stop():
    params = BreakevenParams(trigger_r=1.0, offset_r=0.25)  # stop to 100 + 0.25*2 = 100.5
    d = P.breakeven(long_state(), with_history([(100.5, 102.0, 99.5, 101.0)]), params)
    assert (d.action, d.stop) == ("update_stop", 100.5)
    # touched +1 R, closed at 100.25: the new stop is already through the market -> exit
    d = P.breakeven(long_state(), with_history([(100.5, 102.0, 99.5, 100.25)]), params)
    assert (d.action, d.stop, d.reason) == ("exit", 100.5, "breakeven")


def test_time_stop_exits_at_n_bars_without_progress():
    params = TimeStopParams(bars=3, min_mfe_r=0.5)  # progress = high >= 101
    stale = with_history([(100.0, 100.75, 99.5, 100.25)] * 4)
    decisions = run(P.time_stop, long_state(), stale, params, first_bar=16)
    assert [d.action for d in decisions] == ["hold", "hold", "exit"]
    assert decisions[-1].reason == "time_stop"
    moving = with_history([(100.0, 101.0, 99.5, 100.25)] * 4)  # MFE = 0.5 R: progress
    assert [d.action for d in run(P.time_stop, long_state(), moving, params, 16)] == [
        "hold"] * 4


def test_max_bars_closes_every_policy():
    candles = with_history([(100.0, 100.75, 99.5, 100.25)] * 3)
    d = P.fixed(long_state(), candles.head(17), FixedParams(max_bars=2))
    assert d.action == "hold"
    d = P.fixed(long_state(), candles.head(18), FixedParams(max_bars=2))
    assert (d.action, d.reason) == ("exit", "time_stop")


def test_bar_touching_stop_and_target_is_a_stop():
    both = with_history([(100.0, 104.5, 97.5, 103.0)])
    d = P.fixed(long_state(), both, FixedParams())
    assert (d.action, d.reason) == ("exit", "stop_loss")
    target_only = with_history([(100.0, 104.5, 99.0, 103.0)])
    assert P.fixed(long_state(), target_only, FixedParams()).reason == "take_profit"


def test_stop_hit_after_a_move_is_named_by_what_moved_it():
    bar = with_history([(101.0, 101.5, 99.25, 100.5)])
    moved = long_state(current_stop=99.5, stop_reason="breakeven")
    assert P.fixed(moved, bar, FixedParams()).reason == "breakeven"
    # without a recorded reason (an API caller): at the entry price -> breakeven,
    # elsewhere past the initial stop -> trailing_stop
    assert P.fixed(long_state(current_stop=100.0), with_history([(101.0, 101.5, 99.75,
                                                                  100.5)]),
                   FixedParams()).reason == "breakeven"
    assert P.fixed(long_state(current_stop=99.5), bar, FixedParams()).reason == (
        "trailing_stop")


def test_partial_once_at_the_first_close_at_k_r():
    params = PartialParams(trigger_r=1.0, fraction=0.5)
    candles = with_history([(100.0, 101.5, 99.5, 101.5), (101.5, 102.5, 101.0, 102.0),
                            (102.0, 103.0, 101.5, 102.5)])
    decisions = run(P.partial, long_state(), candles, params, first_bar=16)
    assert [d.action for d in decisions] == ["hold", "take_partial", "hold"]
    assert decisions[1].partial_fraction == 0.5 and decisions[1].reason == "partial"


def test_ml_exit_uses_the_injected_probability():
    candles = with_history([(100.0, 100.75, 99.5, 100.25)])
    seen = []

    def provider(state, c):
        seen.append((state.bars_held, len(c)))
        return 0.3

    d = P.ml_exit(long_state(), candles, MlExitParams(threshold=0.4, provider=provider))
    assert (d.action, d.reason) == ("exit", "ml_exit")
    assert seen == [(1, 17)]
    d = P.ml_exit(long_state(), candles, MlExitParams(threshold=0.25, provider=provider))
    assert d.action == "hold"
    with pytest.raises(PositionError, match="provider"):
        P.ml_exit(long_state(), candles, MlExitParams())


def test_combined_applies_breakeven_and_time_stop():
    params = CombinedParams(breakeven_r=1.0, trail_atr=None, time_stop_bars=3,
                            time_stop_min_mfe_r=0.5, partial_r=None)
    candles = with_history([(100.5, 102.0, 99.5, 101.0)])
    d = P.combined(long_state(), candles, params)
    assert (d.action, d.stop, d.reason) == ("update_stop", ENTRY, "breakeven")
    stale = with_history([(100.0, 100.75, 99.5, 100.25)] * 3)
    d = P.combined(long_state(), stale, params)
    assert (d.action, d.reason) == ("exit", "time_stop")


def test_no_bar_in_the_position_yet_holds():
    candles = with_history([])  # only history: the entry bar has not started
    d = P.combined(long_state(), candles, CombinedParams())
    assert (d.action, d.stop) == ("hold", STOP)
    assert observe(long_state(), candles).bars_held == 0


@pytest.mark.parametrize("name", ["fixed", "atr_trailing", "breakeven", "time_stop",
                                  "partial", "combined"])
def test_long_and_short_are_mirror_images(name):
    params = make_params(name, {"max_bars": 24})
    long_path = with_history(TRAIL_PATH + [(101.5, 102.25, 97.75, 98.0)] * 2)
    short_path = mirror(long_path)
    long_d = run(P.POLICIES[name], long_state(target=None), long_path, params, 16)
    short_d = run(P.POLICIES[name], short_state(target=None), short_path, params, 16)
    assert [(d.action, d.reason, d.partial_fraction) for d in long_d] == [
        (d.action, d.reason, d.partial_fraction) for d in short_d]
    assert [d.stop for d in long_d] == [200 - d.stop for d in short_d]
    assert long_d[-1].action == "exit"  # the path ends through every stop
    moved_by = {"atr_trailing": "trailing_stop", "breakeven": "breakeven",
                "combined": "breakeven"}
    assert long_d[-1].reason == moved_by.get(name, "stop_loss")


def test_observe_counts_excursions_in_r():
    candles = with_history([(100.0, 101.0, 99.0, 100.5), (100.5, 103.0, 99.5, 102.0)])
    s = observe(long_state(), candles)
    assert (s.bars_held, s.mfe, s.mae) == (2, (103.0 - 100.0) / 2, (100.0 - 99.0) / 2)
    s = observe(short_state(), mirror(candles))
    assert (s.bars_held, s.mfe, s.mae) == (2, 1.5, 0.5)


@pytest.mark.parametrize(("policy", "values", "field"), [
    ("atr_trailing", {"atr_mult": 0}, "params.atr_mult"),
    ("atr_trailing", {"atr_period": 2.5}, "params.atr_period"),
    ("breakeven", {"trigger_r": 1.0, "offset_r": 1.0}, "params.offset_r"),
    ("time_stop", {"bars": 0}, "params.bars"),
    ("partial", {"fraction": 1.0}, "params.fraction"),
    ("combined", {"trail_atr": "wide"}, "params.trail_atr"),
    ("combined", {"max_bars": True}, "params.max_bars"),
    ("fixed", {"stop": 1}, "params.stop"),
    ("nope", {}, "policy"),
])
def test_bad_params_name_the_field(policy, values, field):
    with pytest.raises(PositionError) as err:
        make_params(policy, values)
    assert err.value.field == field


def test_bad_state_and_decision_name_the_field():
    with pytest.raises(PositionError) as err:
        long_state(initial_stop=101.0, current_stop=101.0)
    assert err.value.field == "initial_stop"
    with pytest.raises(PositionError) as err:
        short_state(target=105.0)
    assert err.value.field == "target"
    with pytest.raises(PositionError) as err:
        ExitDecision("take_partial", 1.0, None, "partial", partial_fraction=1.5)
    assert err.value.field == "partial_fraction"
    with pytest.raises(PositionError):
        ExitDecision("exit", 1.0, None, "because")
    with pytest.raises(PositionError):
        ExitDecision("exit", 1.0, None, "hold")


def test_default_policy_and_lookup():
    assert P.DEFAULT_POLICY == "combined"
    name, fn, params = P.get_policy(None, {"time_stop_bars": 6})
    assert (name, fn, params.time_stop_bars) == ("combined", P.combined, 6)
    candles = from_bars([(100.0, 100.5, 99.5, 100.0)])
    assert P.atr_last(candles, 14, fallback=2.0) == 2.0  # too few candles: R stands in
