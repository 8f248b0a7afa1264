"""The loop report's figures (bench/loop_report.py) on trades and decisions whose answers
are known by hand; the report itself runs freqtrade (docs/freqtrade.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.loop_report import service_figures, signal_labels, targets, trade_figures

H = 3600
T = 1_500_000_000  # a signal candle, on the hour


def _trade(profit_abs: float, ratio: float, reason: str = "roi", opened: int = T) -> dict:
    return {"profit_abs": profit_abs, "profit_ratio": ratio, "exit_reason": reason,
            "open_timestamp": (opened + H) * 1000}


def test_trade_figures() -> None:
    # wallet 10,000: +100, -50, -150, +20 -> equity 10100, 10050, 9900, 9920
    f = trade_figures([_trade(100, 0.10), _trade(-50, -0.05, "stop_loss"),
                       _trade(-150, -0.15, "stop_loss"), _trade(20, 0.02)])
    assert f["trades"] == 4 and f["profit_pct"] == pytest.approx(-0.8)
    assert f["win_rate"] == 0.5 and f["avg_loss_pct"] == pytest.approx(-10.0)
    assert f["expectancy_pct"] == pytest.approx(-2.0)
    assert f["max_drawdown_pct"] == pytest.approx(100 * 200 / 10_100, abs=1e-4)
    assert f["exit_reasons"] == {"roi": 2, "stop_loss": 2}
    empty = trade_figures([])
    assert empty["trades"] == 0 and empty["win_rate"] is None and empty["max_drawdown_pct"] == 0


def test_service_figures_score_decisions_against_the_base_trades() -> None:
    labels = signal_labels([_trade(5, 0.005, opened=T), _trade(-5, -0.005, opened=T + H),
                            _trade(5, 0.005, opened=T + 2 * H)], H)
    assert labels == {T: 1, T + H: 0, T + 2 * H: 1}

    def entry(t: int, decision: str, p: float) -> dict:
        return {"event": "entry", "decision": decision, "probability": p,
                "signal_time": datetime.fromtimestamp(t, UTC).isoformat(),
                "answer": {"model": {"id": 7}}}

    events = [entry(T, "take", 0.6), entry(T + H, "take", 0.5), entry(T + 2 * H, "skip", 0.2),
              entry(T + 9 * H, "take", 0.6),  # no base trade: judged, not scored
              {"event": "entry", "decision": None}, {"event": "exit"}]
    s = service_figures(events, labels)
    assert (s["judged"], s["scored"], s["take"]) == (4, 3, 2)
    assert s["accuracy"] == pytest.approx(1 / 3, abs=1e-4)  # only the first is right
    assert s["precision"] == 0.5 and s["base_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["majority_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["models"] == [7] and s["distinct_probabilities"] == 3
    assert s["probability_range"] == [0.2, 0.6]


def _variant(profit: float, avg_loss: float | None, accuracy: float, base: float,
             trades: int = 10, majority: float | None = None) -> dict:
    return {"profit_pct": profit, "avg_loss_pct": avg_loss, "trades": trades,
            "service": {"accuracy": accuracy, "base_rate": base,
                        "majority_accuracy": max(base, 1 - base) if majority is None
                        else majority}}


def test_targets_met_and_not_met() -> None:
    t = targets({"a": _variant(2.0, -1.0, 0.5, 0.5),
                 "b": _variant(2.2, -0.85, 0.6, 0.5),   # +10 %, loss cut 15 %, 60 % > 50 %
                 "c": _variant(2.05, -0.95, 0.56, 0.6),  # +2.5 %, cut 5 %, below base rate
                 "d": _variant(0.0, None, 0.54, 0.3)})  # no loss to compare, 54 % < 55 %
    assert t["b"]["accuracy"]["met"] and t["b"]["avg_loss_cut"]["met"]
    assert t["b"]["profit_gain"]["met"] and t["b"]["profit_gain"]["value"] == pytest.approx(0.1)
    assert t["b"]["avg_loss_cut"]["value"] == pytest.approx(0.15)
    assert not any(t["c"][k]["met"] for k in ("accuracy", "avg_loss_cut", "profit_gain"))
    assert not any(t["d"][k]["met"] for k in ("accuracy", "avg_loss_cut", "profit_gain"))
    assert t["d"]["avg_loss_cut"]["value"] is None
    # a losing base strategy: less loss is a gain
    loss = targets({"a": _variant(-2.0, -1.0, 0.5, 0.5), **{k: _variant(-1.0, -1.0, 0.5, 0.5)
                                                            for k in "bcd"}})
    assert loss["b"]["profit_gain"]["value"] == pytest.approx(0.5)
    assert loss["b"]["profit_gain"]["met"]


def test_skipping_everything_meets_no_target() -> None:
    """Above 55 % and the base rate only by skipping everything (always-skip scores 70 %),
    and a profit "gain" from no trade at all: neither is met."""
    t = targets({"a": _variant(-0.13, -0.15, 0.706, 0.294),
                 **{k: _variant(0.0, None, 0.706, 0.294, trades=0) for k in "bcd"}})
    assert t["b"]["accuracy"]["to_beat"] == pytest.approx(0.706)
    assert not t["b"]["accuracy"]["met"] and not t["b"]["profit_gain"]["met"]
