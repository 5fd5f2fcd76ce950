"""The dashboard's dependencies: who is logged in, and a form that passed the CSRF check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from homeport.dashboard.auth import CSRF_FIELD, AdminSession, Sessions, check_csrf, current_session
from homeport.dashboard.render import DashboardRoute, read_form
from homeport.deps import StateDep


def router() -> APIRouter:
    """A router for dashboard pages: hidden from the API document, errors as pages."""
    return APIRouter(route_class=DashboardRoute, include_in_schema=False)


def dashboard_sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.dashboard
    return sessions


async def admin_session(request: Request, state: StateDep) -> AdminSession:
    admin = await current_session(state, dashboard_sessions(request), request)
    request.state.dashboard_admin = admin
    return admin


AdminSessionDep = Annotated[AdminSession, Depends(admin_session)]


async def checked_form(request: Request, admin: AdminSessionDep) -> dict[str, str]:
    """The posted form of a logged-in operator, refused (403) unless it carries the session's
    CSRF token and comes from this site."""
    form = await read_form(request)
    check_csrf(request, admin, form.get(CSRF_FIELD))
    return form


FormDep = Annotated[dict[str, str], Depends(checked_form)]
