"""Position management: exit policies (pure functions), the backtester that replays them,
and the exit service behind /exits. See docs/positions.md.

Modules: barriers (shared barrier defaults and the intrabar fill rule), state (position,
decision, the stop-tightening rule), params, policies, backtester, report, tuning, chart,
service, cli.
"""
