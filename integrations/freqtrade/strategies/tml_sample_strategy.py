"""Sample strategy: an EMA cross (long only) whose entries the service judges.

``TMLSampleStrategy`` is the base strategy with the service in the loop; with
``"tml": {"entry": "off", "exit_advice": false, "report_exits": false}`` it is the base
strategy alone (the same signals, no call made).
"""

from __future__ import annotations

from freqtrade.strategy import IntParameter, IStrategy
from pandas import DataFrame

from integrations.freqtrade.mixin import TMLStrategyMixin


class TMLSampleStrategy(TMLStrategyMixin, IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1h"
    can_short = False
    # stop and target become the signal's stop/target distance on /predict
    stoploss = -0.004
    minimal_roi = {"0": 0.006}  # noqa: RUF012 - freqtrade reads class attributes
    trailing_stop = False
    process_only_new_candles = True
    startup_candle_count = 100  # the service's feature window
    use_exit_signal = True

    fast = IntParameter(5, 30, default=12, space="buy")
    slow = IntParameter(20, 100, default=30, space="buy")

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ema_fast"] = dataframe["close"].ewm(span=self.fast.value,
                                                       adjust=False).mean()
        dataframe["ema_slow"] = dataframe["close"].ewm(span=self.slow.value,
                                                       adjust=False).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        above = dataframe["ema_fast"] > dataframe["ema_slow"]
        cross_up = above & ~above.shift(1, fill_value=True)
        dataframe.loc[cross_up & (dataframe["volume"] > 0), ["enter_long", "enter_tag"]] = (
            1, "ma_cross")  # the service's ma_cross family (a known strategy feature)
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        below = dataframe["ema_fast"] < dataframe["ema_slow"]
        cross_down = below & ~below.shift(1, fill_value=True)
        dataframe.loc[cross_down, "exit_long"] = 1
        return dataframe
