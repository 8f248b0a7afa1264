"""Equity curves (cumulative R per policy) as a PNG."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from backend.positions.backtester import PolicyResult
from backend.positions.report import equity_r


def equity_figure(results: Mapping[str, PolicyResult], *,
                  title: str = "Equity by exit policy",
                  out_of_sample_from: int | None = None) -> Figure:
    """One line per policy: cumulative R (fixed-risk sizing) against exit time.

    ``out_of_sample_from`` (epoch seconds, the first bar after a ``--split``): that part
    is shaded and labelled out-of-sample, so a reader knows which trades the tuning saw.
    The caller closes the figure.
    """
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
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
    if out_of_sample_from is not None:
        start = datetime.fromtimestamp(out_of_sample_from, UTC).replace(tzinfo=None)
        lo, hi = ax.get_xlim()
        end = max(mdates.num2date(hi).replace(tzinfo=None), start)
        ax.axvspan(start, end, color="tab:green", alpha=0.08,
                   label=f"out-of-sample from {start:%Y-%m-%d} (tuned on the part before)")
        ax.axvline(start, color="tab:green", linewidth=1.0, linestyle="--")
        ax.set_xlim(min(lo, mdates.date2num(start)), hi)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("cumulative R (net of costs)")
    if out_of_sample_from is not None:  # the report part only: say so where it is read
        title = f"{title}\nout-of-sample trades only, from {start:%Y-%m-%d}"
    ax.set_title(title)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_equity(results: Mapping[str, PolicyResult], path: str | Path, *,
                title: str = "Equity by exit policy",
                out_of_sample_from: int | None = None) -> Path:
    """Write :func:`equity_figure` to ``path`` (PNG); returns the path written."""
    fig = equity_figure(results, title=title, out_of_sample_from=out_of_sample_from)
    try:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
