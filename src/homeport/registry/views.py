"""How a server row is shown: to anyone in the browser, or to its own key and admins."""

from __future__ import annotations

import uuid

from homeport.registry.models import Server
from homeport.registry.schemas import OwnedServerOut, ServerOut, ServerState
from homeport.registry.service import decode_tags


def public_view(row: Server) -> ServerOut:
    """Never the registering key, the private metadata or who is playing."""
    return ServerOut(
        id=row.id,
        name=row.name,
        address=row.address,
        port=row.port,
        map=row.map,
        mode=row.mode,
        region=row.region,
        version=row.version,
        players=row.players,
        max_players=row.max_players,
        tags=decode_tags(row.tags),
        metadata=row.game_metadata,
        password_protected=row.password_protected,
        require_join_ticket=row.require_join_ticket,
        state=ServerState(row.state),
        created_at=row.created_at,
        heartbeat_at=row.heartbeat_at,
    )


def owned_view(row: Server) -> OwnedServerOut:
    return OwnedServerOut(
        **public_view(row).model_dump(),
        private_metadata=row.private_metadata,
        player_ids=[uuid.UUID(p) for p in row.player_ids],
        expires_at=row.lease_expires_at,
    )
