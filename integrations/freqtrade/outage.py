"""One warning per outage: the first failed call says what happens to entries meanwhile,
the first answer after it says how many calls went unanswered."""

from __future__ import annotations

import logging


class OutageLog:
    def __init__(self, logger: logging.Logger, *, fail_open: bool) -> None:
        self.logger = logger
        self.fail_open = fail_open
        self.down = False
        self.missed = 0

    def failed(self, call: str, error: BaseException) -> None:
        self.missed += 1
        if self.down:
            return
        self.down = True
        policy = ("entries are TAKEN without its judgement (fail_open)" if self.fail_open
                  else "NO entries are taken until it answers (fail closed)")
        self.logger.warning("TML service unreachable (%s: %s): %s", call, error, policy)

    def answered(self) -> None:
        if self.down:
            self.logger.warning("TML service answering again after %d unanswered call(s)",
                                self.missed)
        self.down = False
        self.missed = 0
