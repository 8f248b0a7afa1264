"""The sample strategy, stopping the service just before it asks about entry number
``TML_TEST_STOP_AT`` (a deterministic "the service went away mid-backtest")."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

from integrations.freqtrade.strategies.tml_sample_strategy import TMLSampleStrategy


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


class OutageStrategy(TMLSampleStrategy):
    asked = 0

    def confirm_trade_entry(self, *args: Any, **kwargs: Any) -> bool:
        OutageStrategy.asked += 1
        if OutageStrategy.asked == int(os.environ["TML_TEST_STOP_AT"]):
            os.kill(int(os.environ["TML_TEST_SERVICE_PID"]), signal.SIGINT)
            port = int(os.environ["TML_TEST_SERVICE_PORT"])
            deadline = time.monotonic() + 60
            while not _refuses(port) and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().confirm_trade_entry(*args, **kwargs)
