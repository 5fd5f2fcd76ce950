"""Matchmaking refusals."""

from __future__ import annotations

from homeport.errors import Conflict, Forbidden, NotFound, UnprocessableContent


class QueueNotFound(NotFound):
    slug = "queue-not-found"
    title = "No matchmaking queue has this name"


class TicketNotFound(NotFound):
    slug = "ticket-not-found"
    title = "No ticket of yours has this id"


class AlreadySearching(Conflict):
    slug = "already-searching"
    title = "A player of this ticket already has an active ticket: cancel it first"


class TicketNotCancellable(Conflict):
    slug = "ticket-not-cancellable"
    title = "The ticket has a server already, or has ended"


class PartyInvalid(UnprocessableContent):
    slug = "party-invalid"
    title = "The party names an unknown player, the leader, or is too large for the queue"


class MatchNotFound(NotFound):
    slug = "match-not-found"
    title = "No match has this id, or it is not yours to see"


class NotMatchServer(Forbidden):
    slug = "not-match-server"
    title = "Only the match's server (or an admin or matchmaking key) may report its result"


class ResultAlreadyRecorded(Conflict):
    slug = "result-already-recorded"
    title = "This match's result is recorded already"


class MatchNotPlayable(Conflict):
    slug = "match-not-playable"
    title = "This match never got a server"
