"""Equity curves (cumulative R per policy) as a PNG."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from backend.positions.backtester import PolicyResult
from backend.positions.report import equity_r


def plot_equity(results: Mapping[str, PolicyResult], path: str | Path, *,
                title: str = "Equity by exit policy") -> Path:
    """Write one line per policy: cumulative R (fixed-risk sizing) against exit time."""
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    try:
        for name, res in results.items():
            times, curve = equity_r(res.trades)
            if times.size == 0:
                continue
            s = res.summary
            label = (f"{name}: {s.trades} trades, exp {s.expectancy_r:+.3f} R, "
                     f"avg loss {s.avg_loss_r:.2f} R" if s.avg_loss_r is not None
                     else f"{name}: {s.trades} trades")
            dates = times.astype("datetime64[s]").astype(object)
            ax.step(dates, curve, where="post", label=label,
                    linewidth=2.2 if name in ("fixed", "combined") else 1.1)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel("cumulative R (net of costs)")
        ax.set_title(title)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out

