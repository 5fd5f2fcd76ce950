"""Registry refusals. `server-not-registered` tells a dedicated server to register again."""

from __future__ import annotations

from homeport.errors import Conflict, Forbidden, NotFound


class ServerNotRegistered(NotFound):
    slug = "server-not-registered"
    title = "No live server has this id: register again"


class ServerNotFound(NotFound):
    slug = "server-not-found"
    title = "No live server has this id"


class NotServerOwner(Forbidden):
    slug = "not-server-owner"
    title = "Only the key that registered this server may change it"


class RegistrationRaced(Conflict):
    slug = "registration-raced"
    title = "Another registration of this address and port happened at the same time; retry"


class JoinTicketInvalid(Forbidden):
    slug = "join-ticket-invalid"
    title = "The join ticket is unknown, used, expired, or for another server"


class JoinTicketRequired(Forbidden):
    slug = "join-ticket-required"
    title = "This server admits players only with a join ticket"


class ServerNotJoinable(Conflict):
    slug = "server-not-joinable"
    title = "The server is full or draining"
