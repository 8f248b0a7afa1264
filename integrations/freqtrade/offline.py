"""freqtrade's own CLI, offline: ``python -m integrations.freqtrade.offline backtesting -c
CONFIG ...``.

Two changes to a normal run, nothing else:

- ``Exchange._load_async_markets`` fills in a static market list for the configured pairs
  (ccxt market dicts, tick-size precision) instead of downloading the exchange's;
- every socket connection and name lookup outside loopback is refused, so a run can only
  reach the service on this machine (and a forgotten download fails loudly).

For backtesting and tests; a live bot runs ``freqtrade`` as usual.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class OfflineError(ConnectionRefusedError):
    """A connection the offline runner does not allow."""


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def install_network_guard() -> None:
    """Refuse connect()/getaddrinfo() to anything but loopback (and unix sockets)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise OfflineError(f"offline runner: connection to {address[0]!r} refused "
                               "(only loopback is allowed)")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME,
                                  f"offline runner: name lookup of {host!r} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def market(pair: str, fee: float = 0.001) -> dict[str, Any]:
    """A ccxt spot market dict for ``BASE/QUOTE`` (tick-size precision, as binance's)."""
    base, quote = pair.split(":")[0].split("/")
    return {
        "id": base + quote, "symbol": pair, "base": base, "quote": quote,
        "baseId": base, "quoteId": quote, "settle": None, "settleId": None,
        "type": "spot", "spot": True, "margin": False, "swap": False, "future": False,
        "option": False, "contract": False, "linear": None, "inverse": None,
        "contractSize": None, "active": True, "taker": fee, "maker": fee,
        "precision": {"amount": 1e-8, "price": 1e-8, "base": 1e-8, "quote": 1e-8},
        "limits": {"amount": {"min": 1e-8, "max": None}, "price": {"min": 1e-8, "max": None},
                   "cost": {"min": None, "max": None},
                   "leverage": {"min": None, "max": None}},
        "info": {},
    }


def install_static_markets() -> None:
    from freqtrade.exchange.exchange import Exchange

    def _load_async_markets(self: Exchange, reload: bool = False) -> None:
        pairs = list(self._config.get("exchange", {}).get("pair_whitelist", []))
        fee = float(self._config.get("fee") or 0.001)
        self._api_async.set_markets([market(p, fee) for p in pairs])

    Exchange._load_async_markets = _load_async_markets  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    install_network_guard()
    install_static_markets()
    from freqtrade.main import main as freqtrade_main

    try:
        freqtrade_main(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
