"""Python client of the trading-ML service: depends on ``httpx`` only.

>>> from tml_client import TMLClient
>>> with TMLClient("http://127.0.0.1:8000", api_key="...") as tml:
...     answer = tml.predict(trade_id="bot1-0001", symbol="EURUSD", timeframe="1h",
...                          side="long", candles=candles)
...     answer.decision
'take'
"""

from tml_client.client import TMLClient
from tml_client.errors import ServiceError, ServiceUnavailable, TMLError, ValidationFailed
from tml_client.types import (
    ExitAdvice,
    ExitRecord,
    FieldError,
    ModelRef,
    Prediction,
    Retrain,
)

__all__ = ["ExitAdvice", "ExitRecord", "FieldError", "ModelRef", "Prediction", "Retrain",
           "ServiceError",
           "ServiceUnavailable", "TMLClient", "TMLError", "ValidationFailed"]
