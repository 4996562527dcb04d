"""Choosing whom to copy: a leader's history (Data API v2 + Gamma, or a saved file), the report's figures, and a
backtest that replays the history through the supervisor's own decision code.

- history.py  the rows (trades, activity, markets) as the APIs return them, normalised; saved/loaded as JSON
- fetch.py    cursor-paginated downloads with progress and 429 / Retry-After handling
- report.py   realized / unrealized PnL, win rate (Wilson interval), volume, sizes, maker/taker, kinds, holding
- (supervisor/execute/simfill.py: the taker fee by category and the walk of a book by size, shared with dry-run)
- backtest.py the replay: `supervisor.decide.decide` + `Guardrails` on every leader fill, fees, minimums, ticks,
              a delay slippage model; spent / received / redeemed / made and skips by reason
- html.py     one self-contained HTML file with matplotlib plots (inline SVG)
"""
