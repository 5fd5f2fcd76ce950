"""Leaderboards: ranked records per board and period, submitted by dedicated servers."""
