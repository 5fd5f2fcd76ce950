"""Who may read a board, and which board and period a read is about.

Reads accept a player's access token or a server key with the `leaderboards` scope. A player's
token is checked as `/v1/validate` checks it (`identity.service_validate`): claims verified once
per token, the session's state cached and dropped when an auth event says it changed, so a
read costs no database round trip for its caller.
"""

from __future__ import annotations

from homeport.identity import errors as identity_errors
from homeport.identity.service_keys import authenticate_key, require_scope
from homeport.identity.service_validate import validate_player_token
from homeport.leaderboards import service
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.errors import PeriodNotFound
from homeport.state import AppState

SCOPE = "leaderboards"
KEY_PREFIXES = ("hp_sk_", "hp_admin_")


async def check_reader(state: AppState, credentials: str | None) -> None:
    """Refuse a caller that is neither a player nor a key with the `leaderboards` scope."""
    if credentials is None:
        raise identity_errors.TokenMissing()
    ident = state.identity
    await ident.events.poll_if_due(state.read_sessions, state.sessions)
    if credentials.startswith(KEY_PREFIXES):
        caller = await authenticate_key(ident, state.read_sessions, credentials)
        require_scope(caller, SCOPE)
        return
    await validate_player_token(state.read_sessions, ident, player_token=credentials)


async def where(state: AppState, board_id: str, period: str | None) -> tuple[BoardRule, str]:
    """The board and the period to read: the current one unless `period` names another."""
    rule = await state.leaderboards.rule(state.read_sessions, board_id)
    current = rule.period_at(state.clock.now())
    if period is None or period in ("current", current.key):
        return rule, current.key
    try:
        rule.schedule.period_named(period)
    except ValueError as exc:
        error = {"loc": ["query", "period"], "msg": str(exc), "type": "value_error"}
        raise PeriodNotFound(errors=[error]) from exc
    async with state.read_sessions() as session:
        await service.check_period(session, rule, period)
    return rule, period
