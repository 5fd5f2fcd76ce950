"""Who may read and write which player's documents.

Dedicated servers are trusted with every player's data (a key with `players:read` reads,
`players:write` reads and writes); admin keys may do anything. Players act only through the
rules of each collection (`settings.players_collections`): a collection not listed there is
for servers alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from homeport.identity.errors import MissingScope
from homeport.identity.service_keys import Caller
from homeport.players.errors import CollectionForbidden, PlayerNotFound
from homeport.settings import CollectionRule, Settings

SERVERS_ONLY = CollectionRule()
READ, WRITE = "players:read", "players:write"


@dataclass(frozen=True, slots=True)
class DataCaller:
    """A server or admin key, or a player signed in with an access token."""

    key: Caller | None = None
    player_id: uuid.UUID | None = None

    @property
    def actor(self) -> str:
        """How the inventory ledger names who made a change."""
        if self.key is not None:
            return f"key:{self.key.name}"[:80]
        return f"player:{self.player_id}"

    def key_may(self, scope: str) -> bool:
        key = self.key
        if key is None:
            return False
        return key.is_admin or scope in key.scopes or (scope == READ and WRITE in key.scopes)


def rule_for(settings: Settings, collection: str) -> CollectionRule:
    return settings.players_collections.get(collection, SERVERS_ONLY)


def resolve_player(caller: DataCaller, reference: str) -> uuid.UUID:
    """The player a path names: an account id, or `me` for the signed-in player."""
    if reference == "me":
        if caller.player_id is None:
            raise PlayerNotFound("`me` names the signed-in player; a key must give a player id")
        return caller.player_id
    try:
        return uuid.UUID(reference)
    except ValueError as exc:
        raise PlayerNotFound(f"{reference[:64]!r} is not a player id") from exc


def require_key_scope(caller: DataCaller, scope: str) -> None:
    if caller.key is not None and not caller.key_may(scope):
        raise MissingScope(f"This key lacks the '{scope}' scope", required_scope=scope)


def may_read(caller: DataCaller, settings: Settings, player: uuid.UUID, collection: str) -> bool:
    if caller.key is not None:
        return caller.key_may(READ)
    rule = rule_for(settings, collection)
    own = caller.player_id == player
    if rule.read == "public":
        return True
    # A player who may write their own documents may also read them back.
    return own and (rule.read == "owner" or rule.write == "owner")


def require_read(
    caller: DataCaller, settings: Settings, player: uuid.UUID, collection: str
) -> None:
    require_key_scope(caller, READ)
    if not may_read(caller, settings, player, collection):
        raise CollectionForbidden(f"The '{collection}' collection of this player is not readable")


def require_write(
    caller: DataCaller, settings: Settings, player: uuid.UUID, collection: str
) -> None:
    require_key_scope(caller, WRITE)
    if caller.key is not None:
        return
    rule = rule_for(settings, collection)
    if not (rule.write == "owner" and caller.player_id == player):
        raise CollectionForbidden(f"The '{collection}' collection of this player is not writable")


def require_own_or_key(caller: DataCaller, player: uuid.UUID, scope: str) -> None:
    """Inventory reads: the player themselves, or a key with the scope."""
    require_key_scope(caller, scope)
    if caller.key is None and caller.player_id != player:
        raise CollectionForbidden("Players may read only their own inventory")
