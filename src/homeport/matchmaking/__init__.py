"""Matchmaking: queues, tickets, the matcher and the matches it makes."""
