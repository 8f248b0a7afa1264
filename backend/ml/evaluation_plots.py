"""PNG figures of a nested evaluation (matplotlib, Agg backend): what a quant looks at first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from backend.ml.evaluation import NestedEvaluation, OutOfSample
from backend.ml.metrics import reliability_table


def _reliability(ax: Any, oos: OutOfSample, title: str) -> None:
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for who, colour in (("model", "tab:orange"), ("model_calibrated", "tab:blue")):
        bins = reliability_table(oos.y, oos.prob[who])
        x = [b["mean_predicted"] for b in bins]
        y = [b["observed_rate"] for b in bins]
        err = [2 * (b["observed_se"] or 0.0) for b in bins]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=colour,
                    label=f"{who.replace('_', ' ')} (±2 SE)")
        for xi, yi, b in zip(x, y, bins, strict=True):
            ax.annotate(str(b["count"]), (xi, yi), fontsize=7, xytext=(3, 3),
                        textcoords="offset points", color=colour)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability",
           ylabel="observed rate", title=title)
    ax.legend(loc="upper left", fontsize=8)


def write_plots(result: NestedEvaluation, directory: str | Path) -> list[Path]:
    """Write ``reliability.png`` and ``cumulative_r.png`` into ``directory``; their paths.

    The cumulative curve sums the returns in R (returns in fractions of the entry when
    the risk is unknown) of the walk-forward test signals in time order: all of them, and
    those the decision rule takes on the calibrated probabilities.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    _reliability(axes[0], result.walk_forward, "walk-forward test folds (nested)")
    _reliability(axes[1], result.holdout, "final hold-out")
    fig.tight_layout()
    paths = [out / "reliability.png", out / "cumulative_r.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    wf = result.walk_forward
    in_r = np.isfinite(wf.returns_r).all()
    values = np.nan_to_num(wf.returns_r if in_r else wf.returns)
    decision = result.report["decision"]
    taken = wf.taken
    times = wf.t0.astype("datetime64[s]").astype(object)
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(times, np.cumsum(values), label=f"all signals ({values.size})", color="grey")
    ax.plot(times, np.cumsum(np.where(taken, values, 0.0)),
            label=f"taken by the {decision['rule'].replace('_', ' ')} rule ({int(taken.sum())})",
            color="tab:blue")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set(xlabel="signal time", ylabel="cumulative return " + ("(R)" if in_r else "(fraction)"),
           title="walk-forward test signals (nested), before costs")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths
