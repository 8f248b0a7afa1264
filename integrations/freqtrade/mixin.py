"""A freqtrade strategy mixin that asks the service before each entry, follows its exit
advice when enabled and reports every closed trade.

    class MyStrategy(TMLStrategyMixin, IStrategy):
        ...

Configured by the ``"tml"`` section of the freqtrade config (see :class:`TMLSettings`).
freqtrade takes the trade when ``confirm_trade_entry`` raises, so nothing here raises:
every failure is a logged "cannot answer", which refuses the entry (fail closed) unless
``fail_open`` is set.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from freqtrade.exchange import timeframe_to_seconds
from freqtrade.strategy import stoploss_from_absolute
from tml_client import ExitAdvice, ServiceUnavailable, TMLClient, TMLError, ValidationFailed

from integrations.freqtrade import mapping
from integrations.freqtrade.outage import OutageLog
from integrations.freqtrade.settings import TMLSettings

logger = logging.getLogger("tml.freqtrade")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per call drowns the log
_HISTORY_BARS = 60  # candles before the entry sent with /exits/evaluate (its ATR window)


class TMLStrategyMixin:
    """Mix in before ``IStrategy``. A strategy that overrides one of these hooks itself
    must call ``super()`` to keep the service in the loop."""

    use_custom_stoploss = True  # custom_stoploss returns None (keep) unless exit_advice

    # -- state, built lazily (freqtrade constructs strategies before the config is final)

    def _tml(self) -> TMLSettings:
        settings = getattr(self, "_tml_settings", None)
        if settings is None:
            settings = TMLSettings.from_config(self.config)
            self._tml_settings = settings
            self._tml_outage = OutageLog(logger, fail_open=settings.fail_open)
            self._tml_client: TMLClient | None = None
            self._tml_pending: dict[tuple[str, str], dict[str, Any]] = {}
            self._tml_advice: dict[tuple[str, int], ExitAdvice | None] = {}
            self._tml_reported: set[str] = set()
            self._tml_warned: set[str] = set()
        return settings

    def _tml_http(self) -> TMLClient:
        if self._tml_client is None:
            s = self._tml()
            self._tml_client = TMLClient(s.url, s.api_key, timeout=s.timeout,
                                         connect_timeout=s.connect_timeout,
                                         retries=s.retries, backoff=s.backoff)
        # while the service is down, one attempt per call: retries only add latency
        self._tml_client.retries = 0 if self._tml_outage.down else self._tml().retries
        return self._tml_client

    def _tml_call(self, name: str, fn: Any, **kwargs: Any) -> Any:
        """``fn(**kwargs)`` or None when the service cannot answer (logged, never raised)."""
        try:
            result = fn(**kwargs)
        except ValidationFailed as exc:  # our request broke a rule: say it once per reason
            self._tml_outage.answered()
            self._tml_warn_once(f"{name}:{exc.field}:{exc.reason}",
                                "TML %s refused: %s: %s", name, exc.field, exc.reason)
            return None
        except ServiceUnavailable as exc:
            self._tml_outage.failed(name, exc)
            return None
        except TMLError as exc:
            self._tml_outage.answered()
            self._tml_warn_once(f"{name}:{exc}", "TML %s failed: %s", name, exc)
            return None
        except Exception as exc:  # a bug here must not become a silent take
            self._tml_warn_once(f"{name}:{type(exc).__name__}", "TML %s error: %r", name, exc)
            return None
        self._tml_outage.answered()
        return result

    def _tml_warn_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._tml_warned:
            self._tml_warned.add(key)
            logger.warning(msg, *args)

    def _tml_log(self, event: dict[str, Any]) -> None:
        path = self._tml().decision_log
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(event, default=str) + "\n")

    # -- entries -------------------------------------------------------------------------

    def confirm_trade_entry(self, pair: str, order_type: str, amount: float, rate: float,
                            time_in_force: str, current_time: datetime,
                            entry_tag: str | None, side: str, **kwargs: Any) -> bool:
        if not super().confirm_trade_entry(  # type: ignore[misc]
                pair, order_type, amount, rate, time_in_force, current_time, entry_tag,
                side, **kwargs):
            return False
        try:
            return self._tml_confirm(pair, rate, current_time, entry_tag, side)
        except Exception as exc:  # never raise: freqtrade would take the trade
            self._tml_warn_once(f"confirm:{type(exc).__name__}", "TML entry check error: %r",
                                exc)
            return self._tml().fail_open

    def _tml_confirm(self, pair: str, rate: float, current_time: datetime,
                     entry_tag: str | None, side: str) -> bool:
        s = self._tml()
        if s.entry == "off":
            return True
        frame, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
        if frame is None or frame.empty:
            self._tml_warn_once(f"nodata:{pair}", "TML: no analyzed candles for %s", pair)
            return s.fail_open
        signal_time = frame["date"].iloc[-1].to_pydatetime()
        tid = mapping.trade_id(s.trade_id_prefix, pair, side, signal_time)
        stop, target = mapping.stop_and_target(rate, side, self.stoploss, self.minimal_roi)
        answer = self._tml_call(
            "predict", self._tml_http().predict, trade_id=tid,
            symbol=mapping.symbol_of(pair, s.symbols), timeframe=self.timeframe, side=side,
            strategy=(entry_tag or type(self).__name__)[:64],
            candles=mapping.candles_of(frame, max(0, len(frame) - s.candles)),
            signal_time=signal_time, stop_price=stop, target_price=target)
        taken = s.fail_open if answer is None else answer.take or s.entry == "observe"
        if taken:
            self._tml_pending[(pair, side)] = {"trade_id": tid, "initial_stop": stop,
                                               "target": target}
        self._tml_log({"event": "entry", "trade_id": tid, "pair": pair, "side": side,
                       "signal_time": signal_time.isoformat(),
                       "asked_at": current_time.isoformat(),
                       "decision": answer.decision if answer else None,
                       "probability": answer.probability if answer else None,
                       "answer": asdict(answer) if answer else None, "taken": taken})
        return taken

    # -- open positions ------------------------------------------------------------------

    def _tml_trade_info(self, trade: Any) -> dict[str, Any]:
        info = trade.get_custom_data("tml")
        if info:
            # freqtrade's own initial stop is from the fill price (the pending one from the
            # proposed rate)
            return {**info, "initial_stop": trade.initial_stop_loss or info["initial_stop"]}
        # not recorded (entered before the mixin, or custom data lost): derive the id
        tf = timeframe_to_seconds(self.timeframe)
        opened = trade.open_date_utc.timestamp()
        signal = datetime.fromtimestamp(opened - opened % tf - tf, tz=UTC)
        side = "short" if trade.is_short else "long"
        stop, target = mapping.stop_and_target(trade.open_rate, side, self.stoploss,
                                               self.minimal_roi)
        return {"trade_id": mapping.trade_id(self._tml().trade_id_prefix, trade.pair, side,
                                             signal),
                "initial_stop": trade.initial_stop_loss or stop, "target": target}

    def _tml_evaluate(self, pair: str, trade: Any) -> ExitAdvice | None:
        """The service's advice on the last analyzed candle, once per candle and trade."""
        s = self._tml()
        frame, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
        if frame is None or frame.empty:
            return None
        last = frame["date"].iloc[-1]
        info = self._tml_trade_info(trade)
        key = (info["trade_id"], int(last.timestamp()))
        if key in self._tml_advice:
            return self._tml_advice[key]
        entered = frame.index[frame["date"] >= trade.open_date_utc]
        if len(entered) == 0:  # no candle of the position closed yet
            return None
        start = max(0, frame.index.get_loc(entered[0]) - _HISTORY_BARS)
        side = "short" if trade.is_short else "long"
        advice = self._tml_call(
            "exits/evaluate", self._tml_http().evaluate_exit, trade_id=info["trade_id"],
            symbol=mapping.symbol_of(pair, s.symbols), side=side,
            entry_time=trade.open_date_utc, entry_price=trade.open_rate,
            quantity=trade.amount, initial_stop=info["initial_stop"], target=info["target"],
            current_stop=trade.stop_loss, policy=s.policy, params=s.params or None,
            candles=mapping.candles_of(frame, start))
        self._tml_advice = {k: v for k, v in self._tml_advice.items() if k[0] != key[0]}
        self._tml_advice[key] = advice
        return advice

    def custom_stoploss(self, pair: str, trade: Any, current_time: datetime,
                        current_rate: float, current_profit: float, after_fill: bool,
                        **kwargs: Any) -> float | None:
        if not self._tml().exit_advice:
            return None
        try:
            advice = self._tml_evaluate(pair, trade)
        except Exception as exc:
            self._tml_warn_once(f"stop:{type(exc).__name__}", "TML stop advice error: %r", exc)
            return None
        if advice is None or advice.stop is None or advice.action not in ("hold", "update_stop"):
            return None
        # freqtrade wants the stop relative to the current rate (it never loosens it)
        return stoploss_from_absolute(advice.stop, current_rate, is_short=trade.is_short,
                                      leverage=trade.leverage or 1.0) or None

    def custom_exit(self, pair: str, trade: Any, current_time: datetime, current_rate: float,
                    current_profit: float, **kwargs: Any) -> str | bool | None:
        if not self._tml().exit_advice:
            return None
        try:
            advice = self._tml_evaluate(pair, trade)
        except Exception as exc:
            self._tml_warn_once(f"exit:{type(exc).__name__}", "TML exit advice error: %r", exc)
            return None
        if advice is not None and advice.action == "exit":
            return mapping.ADVICE_PREFIX + advice.reason
        return None  # take_partial is not followed: freqtrade partials need position sizing

    # -- fills ---------------------------------------------------------------------------

    def order_filled(self, pair: str, trade: Any, order: Any, current_time: datetime,
                     **kwargs: Any) -> None:
        super().order_filled(pair, trade, order, current_time, **kwargs)  # type: ignore[misc]
        try:
            self._tml_filled(pair, trade, order, current_time)
        except Exception as exc:
            self._tml_warn_once(f"fill:{type(exc).__name__}", "TML fill handling error: %r",
                                exc)

    def _tml_filled(self, pair: str, trade: Any, order: Any, current_time: datetime) -> None:
        s = self._tml()
        side = "short" if trade.is_short else "long"
        if order.ft_order_side == trade.entry_side:
            pending = self._tml_pending.pop((pair, side), None)
            if pending is not None and trade.nr_of_successful_entries <= 1:
                trade.set_custom_data("tml", pending)
            return
        closes = not trade.is_open or math.isclose(order.safe_amount_after_fee, trade.amount,
                                                   rel_tol=1e-9)
        if order.ft_order_side != trade.exit_side or not closes or not s.report_exits:
            return
        self._tml_report(pair, trade, order, current_time, side)

    def _tml_report(self, pair: str, trade: Any, order: Any, current_time: datetime,
                    side: str) -> None:
        s = self._tml()
        info = self._tml_trade_info(trade)
        if info["trade_id"] in self._tml_reported:
            return
        entry_time = trade.open_date_utc
        exit_time = order.order_filled_utc or current_time
        if exit_time <= entry_time:  # a backtest exit inside the entry candle
            exit_time = entry_time + timedelta(seconds=1)
        exit_price = order.safe_price
        amount = trade.amount
        fees = (trade.open_rate * amount * (trade.fee_open or 0.0)
                + exit_price * amount * (trade.fee_close or 0.0))
        initial_stop = info["initial_stop"]
        mfe, mae = mapping.excursions_r(side, trade.open_rate, initial_stop, trade.max_rate,
                                        trade.min_rate)
        reason = mapping.exit_reason(trade.exit_reason or order.ft_order_tag)
        recorded = self._tml_call(
            "exits", self._tml_http().record_exit, trade_id=info["trade_id"],
            symbol=mapping.symbol_of(pair, s.symbols), side=side, entry_time=entry_time,
            exit_time=exit_time, entry_price=trade.open_rate, exit_price=exit_price,
            quantity=amount, exit_reason=reason, initial_stop=initial_stop, fees=fees,
            mfe=mfe, mae=mae, policy_name=(s.policy or "combined") if s.exit_advice
            else "freqtrade", policy_params=s.params if s.exit_advice else {})
        if recorded is not None:
            self._tml_reported.add(info["trade_id"])
        retrain = (self._tml_retrain(info["trade_id"])
                   if recorded is not None and s.retrain else None)
        self._tml_log({"event": "exit", "trade_id": info["trade_id"], "pair": pair,
                       "side": side, "entry_time": entry_time.isoformat(),
                       "exit_time": exit_time.isoformat(), "entry_price": trade.open_rate,
                       "exit_price": exit_price, "exit_reason": reason,
                       "freqtrade_reason": trade.exit_reason,
                       "recorded": recorded is not None, "retrain": retrain})

    def _tml_retrain(self, trade_id: str) -> dict[str, Any] | None:
        """Ask for a retrain and wait for it (``retrain: true``); what came of it."""
        s = self._tml()
        answer = self._tml_call("models/retrain", self._tml_http().retrain,
                                admin_key=s.admin_api_key, wait=True,
                                timeout=s.retrain_timeout)
        if answer is None:
            return None
        row = answer.retrain or {}
        # the service's own check after the exit may have started it: this call then
        # waited for it (started: false), so "new" is a retrain not logged before
        new = row.get("id") is not None and row.get("id") != getattr(self, "_tml_retrain_id",
                                                                     None)
        if new:
            self._tml_retrain_id = row.get("id")
            logger.info("TML retrain %s after %s (%s): candidate %s %s", row.get("id"),
                        trade_id, row.get("reason"), row.get("candidate_model_id"),
                        "promoted" if answer.promoted else "not promoted")
        return {"new": new, "started": answer.started, "due": answer.due, "id": row.get("id"),
                "reason": row.get("reason"), "status": row.get("status"),
                "candidate_model_id": row.get("candidate_model_id"),
                "promoted": row.get("promoted")}
