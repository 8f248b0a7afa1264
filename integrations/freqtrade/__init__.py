"""freqtrade integration: a strategy mixin, a sample strategy/config, an offline runner and a
candle converter. See docs/freqtrade.md."""
