"""Observability: Prometheus metrics, request ids and structured logs, `homeport status`.

Counters and histograms are written where things happen (see `instruments`); state gauges are
read from the database when scraped (see `gauges`), so any replica reports the same state.
"""
