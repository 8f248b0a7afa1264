"""Per-policy statistics of a list of trades, and their table.

Figures "in R" assume fixed-risk sizing (every trade risks 1 R); figures in return assume
the full notional per trade (``return_pct`` is a fraction of the entry price). A win is a
trade with r > 0, a loss r < 0 (net of costs); an exact 0 is neither.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from backend.positions.trades import Trade


@dataclass(frozen=True, slots=True)
class PolicySummary:
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    avg_win_r: float | None
    avg_loss_r: float | None  # negative: the mean of the losing trades' R
    expectancy_r: float | None
    expectancy_r_se: float | None  # standard error of expectancy_r (std / sqrt(n))
    total_r: float
    gross_loss_r: float  # sum of the losing trades' R (negative)
    expectancy_return: float | None
    total_return: float
    profit_factor: float | None  # None when there is no loss
    max_drawdown_r: float  # of the cumulative R curve, >= 0
    max_drawdown_pct: float  # of compounded equity (full notional per trade), in %
    avg_mfe_r: float | None
    avg_mae_r: float | None
    avg_bars_held: float | None
    avg_loss_vs_baseline: float | None  # % change of avg loss vs the fixed baseline
    expectancy_vs_baseline_r: float | None  # expectancy_r - the baseline's
    expectancy_vs_baseline_se: float | None  # its standard error (independent samples)
    exit_reasons: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def max_drawdown(curve: np.ndarray) -> float:
    """Largest peak-to-trough fall of ``curve`` (starting from its first value), >= 0."""
    if curve.size == 0:
        return 0.0
    return float((np.maximum.accumulate(curve) - curve).max())


def equity_r(trades: Sequence[Trade]) -> tuple[np.ndarray, np.ndarray]:
    """(exit times, cumulative R) in exit order, starting at 0 at the first entry."""
    ordered = sorted(trades, key=lambda t: (t.exit_pos, t.signal_pos))
    if not ordered:
        return np.array([], dtype=np.int64), np.array([0.0])
    start = min(t.entry_time for t in ordered)
    times = np.array([start] + [t.exit_time for t in ordered], dtype=np.int64)
    return times, np.concatenate([[0.0], np.cumsum([t.r_multiple for t in ordered])])


def summarize(trades: Sequence[Trade], *, baseline: PolicySummary | None = None
              ) -> PolicySummary:
    """Statistics of ``trades``. Against a ``baseline`` (the fixed policy's summary):
    ``avg_loss_vs_baseline`` = (avg loss / baseline avg loss - 1) x 100, so -15 means the
    losing trades lose 15 % less on average, and the expectancy difference with its
    standard error (treating the two trade lists as independent samples: conservative,
    since both manage mostly the same entries)."""
    r = np.array([t.r_multiple for t in trades], dtype=np.float64)
    ret = np.array([t.return_pct for t in trades], dtype=np.float64)
    wins, losses = r[r > 0], r[r < 0]
    ordered = sorted(trades, key=lambda t: (t.exit_pos, t.signal_pos))
    _, curve = equity_r(ordered)
    equity = np.concatenate([[1.0], np.cumprod([1 + t.return_pct for t in ordered])])
    peak = np.maximum.accumulate(equity)
    avg_loss, expectancy = _mean(losses), _mean(r)
    se = float(r.std(ddof=1) / np.sqrt(r.size)) if r.size > 1 else None
    vs_loss = vs_exp = vs_se = None
    if baseline is not None:
        if avg_loss is not None and baseline.avg_loss_r is not None:
            vs_loss = (avg_loss / baseline.avg_loss_r - 1) * 100
        if expectancy is not None and baseline.expectancy_r is not None:
            vs_exp = expectancy - baseline.expectancy_r
            if se is not None and baseline.expectancy_r_se is not None:
                vs_se = float(np.hypot(se, baseline.expectancy_r_se))
    gross_loss = float(losses.sum())
    return PolicySummary(
        trades=len(trades), wins=int(wins.size), losses=int(losses.size),
        win_rate=float(wins.size / r.size) if r.size else None,
        avg_win_r=_mean(wins), avg_loss_r=avg_loss, expectancy_r=expectancy,
        expectancy_r_se=se, total_r=float(r.sum()), gross_loss_r=gross_loss,
        expectancy_return=_mean(ret), total_return=float(ret.sum()),
        profit_factor=float(wins.sum() / -gross_loss) if losses.size else None,
        max_drawdown_r=max_drawdown(curve),
        max_drawdown_pct=float(((peak - equity) / peak).max() * 100),
        avg_mfe_r=_mean(np.array([t.mfe for t in trades])),
        avg_mae_r=_mean(np.array([t.mae for t in trades])),
        avg_bars_held=_mean(np.array([t.bars_held for t in trades], dtype=np.float64)),
        avg_loss_vs_baseline=vs_loss, expectancy_vs_baseline_r=vs_exp,
        expectancy_vs_baseline_se=vs_se,
        exit_reasons=dict(Counter(t.exit_reason for t in trades)),
    )


_COLUMNS = (("trades", "trades", "d"), ("win %", "win_rate", "%"),
            ("avg win R", "avg_win_r", ".3f"), ("avg loss R", "avg_loss_r", ".3f"),
            ("loss vs fixed", "avg_loss_vs_baseline", "+.1f%"),
            ("exp R", "expectancy_r", "+.3f"), ("vs fixed (SE)", "_vs_exp", ""),
            ("exp ret %", "expectancy_return", "%3"),
            ("total R", "total_r", "+.1f"), ("PF", "profit_factor", ".2f"),
            ("max DD R", "max_drawdown_r", ".1f"), ("MFE R", "avg_mfe_r", ".2f"),
            ("MAE R", "avg_mae_r", ".2f"), ("bars", "avg_bars_held", ".1f"))


def _value(s: PolicySummary, attr: str) -> Any:
    if attr != "_vs_exp":
        return getattr(s, attr)
    if s.expectancy_vs_baseline_r is None or s.expectancy_vs_baseline_se is None:
        return None
    return f"{s.expectancy_vs_baseline_r:+.3f} ({s.expectancy_vs_baseline_se:.3f})"


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str):
        return value
    if fmt == "%":
        return f"{value * 100:.1f}"
    if fmt == "%3":
        return f"{value * 100:+.3f}"
    if fmt.endswith("%"):
        return f"{value:{fmt[:-1]}}%"
    return f"{value:{fmt}}"


def markdown_table(summaries: Mapping[str, PolicySummary]) -> str:
    """A Markdown table, one row per policy."""
    head = "| policy | " + " | ".join(c[0] for c in _COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(_COLUMNS)
    rows = [f"| {name} | " + " | ".join(_cell(_value(s, attr), fmt)
                                         for _, attr, fmt in _COLUMNS) + " |"
            for name, s in summaries.items()]
    return "\n".join([head, rule, *rows])
