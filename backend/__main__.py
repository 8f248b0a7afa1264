"""CLI: ``python -m backend serve|migrate|train|evaluate|track|backtest|db``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from backend.cli_help import HelpFormatter


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__.strip() + "\n\nRun `python -m backend COMMAND --help` for a command's "
              "options.")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # chatty at INFO
    from backend.redact import install as install_redaction

    install_redaction()  # DATABASE_URL's password out of every log record and traceback
    if command == "migrate":
        from backend.apply_ml_migration import main as migrate_main

        return migrate_main(rest)
    if command == "backtest":
        from backend.positions.cli import main as backtest_main

        return backtest_main(rest)
    if command == "db":
        from backend.db.embedded import main as db_main

        return db_main(rest)
    handlers = {"serve": _serve, "train": _train, "evaluate": _evaluate, "track": _track}
    if command not in handlers:
        print(f"unknown command {command!r}; expected one of: serve, migrate, train, "
              "evaluate, track, backtest, db", file=sys.stderr)
        return 2
    return handlers[command](rest)


def _serve(argv: list[str]) -> int:
    from backend.config import get_settings
    from backend.server import serve

    p = argparse.ArgumentParser(prog="python -m backend serve", formatter_class=HelpFormatter,
                                description="Serve the API (migration, model, writer and "
                                            "tracker start with it).")
    s = get_settings()
    p.add_argument("--host", default=s.host, help="address to listen on (TML_HOST)")
    p.add_argument("--port", type=int, default=s.port, help="port (TML_PORT)")
    args = p.parse_args(argv)
    s.host, s.port = args.host, args.port
    return serve(s)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--candles", nargs="+", metavar="FILE_OR_DIR",
                   help="CSV, Parquet or Feather OHLCV files, or directories of them; several "
                        "are pooled into one dataset. Names give symbol and timeframe "
                        "(BTC_USDT-5m.feather, EURUSD-1h.csv) (default: none; give it, "
                        "--from-db or both)")
    p.add_argument("--symbol", default=None, help="symbol of files whose name gives none "
                                                  "(default: from the file name)")
    p.add_argument("--timeframe", default=None,
                   help="timeframe (5m, 1h, 1d) of files whose name gives none (default: "
                        "from the file name)")
    p.add_argument("--tp-atr", type=float, default=None,
                   help="take-profit barrier in ATR (default TML_BARRIER_TP_ATR)")
    p.add_argument("--sl-atr", type=float, default=None,
                   help="stop barrier in ATR (default TML_BARRIER_SL_ATR)")
    p.add_argument("--horizon", default=None,
                   help="time barrier: bars (24) or a duration turned into bars per "
                        "timeframe (2d, 36h) (default TML_BARRIER_HORIZON)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes building the datasets of several files "
                        "(default TML_DATASET_WORKERS, else one per CPU)")
    p.add_argument("--strategy", action="append", default=None,
                   help="base strategy (repeatable; default: all)")
    p.add_argument("--from-db", action="store_true",
                   help="also use labelled rows of real trades from the database")
    p.add_argument("--algorithm", choices=["xgboost", "lightgbm"], default="xgboost",
                   help="gradient-boosting library")
    p.add_argument("--trials", type=int, default=None,
                   help="Optuna trials (default: TML_TRAIN_TRIALS, 20)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed: same seed + data = same metrics (default: "
                        "TML_TRAIN_SEED, 42)")


def _system(need_db: bool) -> Any:
    from backend.config import get_settings
    from backend.db.pool import create_pool, database_url
    from backend.ml.ml_system import MLSystem

    settings = get_settings()
    if not need_db:
        return MLSystem(settings)
    from backend.apply_ml_migration import apply_migration

    url = database_url(settings)
    apply_migration(url)
    pool = create_pool(url, settings)
    pool.open(wait=True)
    return MLSystem(settings, pool)


def _load_data(args: argparse.Namespace, system: Any) -> Any:
    from backend.ml.barrier_spec import Barrier
    from backend.ml.candle_files import candle_files
    from backend.ml.dataset import build_pooled_dataset
    from backend.ml.labeling import STRATEGIES
    from backend.ml.ml_system import concat_datasets

    for s in args.strategy or []:
        if s not in STRATEGIES:
            raise ValueError(f"unknown strategy {s!r}; known: {', '.join(sorted(STRATEGIES))}")
    settings = system.settings
    barrier = Barrier.from_values(tp_atr=args.tp_atr, sl_atr=args.sl_atr,
                                  horizon=args.horizon, defaults=settings)
    parts = []
    if args.candles:
        files = candle_files(args.candles, symbol=args.symbol, timeframe=args.timeframe)
        parts.append(build_pooled_dataset(
            files, strategies=args.strategy, barrier=barrier, extractor=system.extractor,
            workers=args.workers if args.workers is not None else settings.dataset_workers))
    if args.from_db:
        parts.append(system.dataset_from_database(symbol=args.symbol,
                                                  timeframe=args.timeframe))
    if not args.candles and not args.from_db:
        raise ValueError("give --candles FILE and/or --from-db")
    return concat_datasets(parts)


def _fail(exc: Exception) -> int:
    from backend.redact import redact

    print(f"error: {redact(str(exc))}", file=sys.stderr)  # psycopg may quote the conninfo
    return 2


def _train(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m backend train", formatter_class=HelpFormatter,
                                description="Tune, fit, register and (if better) promote.")
    _data_args(p)
    p.add_argument("--name", default=None, help="model name (default TML_MODEL_NAME)")
    p.add_argument("--no-promote", action="store_true",
                   help="register as candidate only, even when it beats the active model")
    args = p.parse_args(argv)
    from backend.db.errors import DatabaseError
    from backend.ml.candles import CandleError

    try:
        system = _system(need_db=True)
        data = _load_data(args, system)
        out = system.train(data, algorithm=args.algorithm, trials=args.trials, seed=args.seed,
                           name=args.name, promote=not args.no_promote, show_progress=True)
    except (CandleError, DatabaseError, ValueError) as exc:
        return _fail(exc)
    print(f"model {out.name} v{out.version} (id {out.model_id}): {out.reason}")
    _print_report({"cross_validation": out.metrics, "holdout": out.holdout})
    return 0


def _evaluate(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m backend evaluate", formatter_class=HelpFormatter,
                                description="Nested out-of-sample report: each purged "
                                            "walk-forward fold and the final hold-out tuned "
                                            "on its own training rows only, beside the "
                                            "baselines; registers nothing.")
    _data_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--plots", metavar="DIR", default=None,
                   help="write reliability.png and cumulative_r.png into DIR (default: no "
                        "plots)")
    p.add_argument("--splits", type=int, default=5, help="outer walk-forward folds")
    p.add_argument("--inner-splits", type=int, default=5, help="inner (tuning) folds")
    p.add_argument("--costs-r", type=float, default=None,
                   help="round-trip costs in R (default: TML_DECISION_COSTS_R, 0)")
    p.add_argument("--margin-r", type=float, default=None,
                   help="expected R a signal must exceed to be taken (default: "
                        "TML_DECISION_MARGIN_R, 0)")
    p.add_argument("--threshold", type=float, default=None,
                   help="probability override of the expected-value rule (default: "
                        "TML_DECISION_THRESHOLD when set)")
    args = p.parse_args(argv)
    from backend.db.errors import DatabaseError
    from backend.ml.candles import CandleError
    from backend.ml.dask_training import on_cluster
    from backend.ml.evaluation import DecisionConfig, nested_evaluate, summary_lines

    try:
        system = _system(need_db=args.from_db)
        data = _load_data(args, system)
        s = system.settings
        threshold = args.threshold if args.threshold is not None else s.decision_threshold
        with on_cluster(s.dask_scheduler):  # unset: boosters fit in process
            result = nested_evaluate(
                data, algorithm=args.algorithm,
                n_trials=args.trials if args.trials is not None else s.train_trials,
                seed=args.seed if args.seed is not None else s.train_seed,
                n_splits=args.splits, inner_splits=args.inner_splits,
                decision=DecisionConfig(tp_atr=data.barrier["tp_atr"],
                                        sl_atr=data.barrier["sl_atr"],
                                        costs_r=(args.costs_r if args.costs_r is not None
                                                 else s.decision_costs_r),
                                        margin_r=(args.margin_r if args.margin_r is not None
                                                  else s.decision_margin_r),
                                        threshold=threshold),
                show_progress=True)
        if args.plots:
            from backend.ml.evaluation_plots import write_plots

            for path in write_plots(result, args.plots):
                print(f"wrote {path}", file=sys.stderr)
    except (CandleError, DatabaseError, ValueError) as exc:
        return _fail(exc)
    if args.json:
        report = dict(result.report)
        report["barrier"] = data.barrier
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY)
                         .decode() + "\n")
    else:
        print("\n".join(summary_lines(result.report)))
    return 0


def _track(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m backend track", formatter_class=HelpFormatter,
                                description="Daily live metrics per model into ml_performance.")
    p.add_argument("--days", type=int, default=30, help="recompute the last DAYS UTC days")
    args = p.parse_args(argv)
    from backend.db.errors import DatabaseError

    try:
        n = _system(need_db=True).track(days=args.days)
    except DatabaseError as exc:
        return _fail(exc)
    print(f"{n} daily rows upserted into ml_performance")
    return 0


def _print_report(sections: dict[str, dict[str, Any]]) -> None:
    keys = ("count", "base_rate", "accuracy", "precision", "recall", "roc_auc", "log_loss",
            "brier")
    for title, rep in sections.items():
        if not rep:
            continue
        print(f"\n{title} (out-of-sample)")
        print(f"  {'':<12}" + "".join(f"{k:>10}" for k in keys))
        for who in ("model", "logistic", "always_take"):
            if who in rep:
                row = rep[who]
                print(f"  {who:<12}" + "".join(_fmt(row.get(k)) for k in keys))


def _fmt(v: Any) -> str:
    if v is None:
        return f"{'-':>10}"
    return f"{v:>10d}" if isinstance(v, int) else f"{v:>10.4f}"


if __name__ == "__main__":
    sys.exit(main())
