"""The dashboard in a real headless Chromium against a live `homeport serve` with a local
fleet of the reference server: log in, see the servers, drain one, ban a player.

Debian's `chromium` is driven by Playwright for Python (`executable_path`, no downloaded
browser). On failure the page's screenshot and HTML are saved under `test-artifacts/` at the
repository root, and the assertion message says where.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import database_for
from tests.e2e.live import LiveServer, cli, environment
from tests.fleet.conftest import BEAT, sim_fleet

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery"


class Backend:
    def __init__(self, directory: Path, db_url: str) -> None:
        fleet = sim_fleet(scaling={"buffer": 2, "max_servers": 3, "scale_down_delay": 0})
        self.env = environment(
            directory / "data",
            db_url,
            HOMEPORT_FLEETS=json.dumps({"arena": fleet.model_dump(mode="json")}),
            HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL=str(BEAT),
            HOMEPORT_FLEET_RECONCILE_INTERVAL="0.2",
        )
        (directory / "data").mkdir()
        self.admin = cli(self.env, "keys", "create", "--name", "ops", "--admin").stdout.split()[-1]
        self.server = LiveServer(self.env).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=30)

    def fleet_servers(self) -> list[dict[str, Any]]:
        answer = self.http.get(
            "/v1/fleets/arena/servers", headers={"Authorization": f"Bearer {self.admin}"}
        )
        assert answer.status_code == 200, answer.text
        servers: list[dict[str, Any]] = answer.json()["servers"]
        return servers

    def until(self, check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while not (result := check()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)
        return result


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    live = Backend(tmp_path, database_for(request, tmp_path))
    try:
        yield live
    finally:
        live.http.close()
        live.server.stop()


@pytest.fixture
def browser_page(request: pytest.FixtureRequest) -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before a drain or ban
        errors: list[str] = []

        def console(message: Any) -> None:
            if message.type == "error":
                errors.append(message.text)

        def response(answer: Any) -> None:
            if answer.status >= 400:
                errors.append(f"{answer.status} {answer.url}")

        page.on("console", console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", response)
        page.console_errors = errors
        try:
            yield page
        finally:
            browser.close()


def _saved(page: Any, name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    shot, html = ARTIFACTS / f"{name}.png", ARTIFACTS / f"{name}.html"
    try:
        page.screenshot(path=str(shot), full_page=True)
        html.write_text(page.content())
    except Exception as exc:  # the browser may be what failed
        return f"(no screenshot: {exc})"
    return f"screenshot {shot}, page HTML {html}"


def test_log_in_see_servers_drain_one_and_ban_a_player(
    backend: Backend, browser_page: Any, request: pytest.FixtureRequest
) -> None:
    page, url = browser_page, backend.server.url
    name = request.node.name.replace("[", "-").replace("]", "")
    player = backend.http.post(
        "/v1/auth/register",
        json={"email": "bob@example.com", "password": PASSWORD, "display_name": "Browser Bob"},
    ).json()["player"]["id"]
    try:
        ready = backend.until(
            lambda: [s for s in backend.fleet_servers() if s["state"] == "ready"][:2] or None,
            "two ready fleet servers",
        )
        page.goto(f"{url}/admin")
        assert page.url.endswith("/admin/login"), page.url
        page.fill("#key", backend.admin)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/admin")
        assert "key ops" in page.inner_text("header")

        page.goto(f"{url}/admin/servers")
        for server in ready:
            page.wait_for_selector(f"#servers a[href='/admin/servers/{server['id']}']")

        victim = ready[0]["id"]
        page.goto(f"{url}/admin/fleets")
        page.click(f"tr[data-server='{victim}'] button.drain")
        page.wait_for_url(f"{url}/admin/fleets")
        state = backend.until(
            lambda: (
                next((s["state"] for s in backend.fleet_servers() if s["id"] == victim), "ended")
                in ("draining", "ended")
            ),
            "the drained server to drain",
        )
        assert state
        # The servers page refreshes itself: the drained server leaves the list or says so,
        # and the replacement the fleet starts appears, all without a reload.
        page.goto(f"{url}/admin/servers")
        known = {s["id"] for s in ready}
        fresh = backend.until(
            lambda: next(
                (
                    s["id"]
                    for s in backend.fleet_servers()
                    if s["state"] == "ready" and s["id"] not in known
                ),
                None,
            ),
            "a replacement server",
        )
        page.wait_for_selector(f"#servers a[href='/admin/servers/{fresh}']", timeout=30_000)
        page.wait_for_function(
            """(id) => {
                const link = document.querySelector(`#servers a[href='/admin/servers/${id}']`);
                return !link || link.closest('tr').children[1].textContent.trim() === 'draining';
            }""",
            arg=victim,
            timeout=30_000,
        )

        page.goto(f"{url}/admin/players")
        page.fill("input[name=q]", "Browser Bob")
        page.press("input[name=q]", "Enter")
        page.click(f"a[href='/admin/players/{player}']")
        page.fill("input[name=reason]", "testing the dashboard")
        page.click("#ban")
        page.wait_for_selector("#player-status:has-text('banned')")
        assert "testing the dashboard" in page.inner_text("#player-status")
        refused = backend.http.post(
            "/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
        )
        assert refused.status_code == 401, refused.text
        assert refused.json()["type"].endswith("player-banned")
        # No script error and no Content-Security-Policy violation on any page.
        assert page.console_errors == [], page.console_errors
    except (AssertionError, playwright.Error) as exc:
        raise AssertionError(f"{exc}\n{_saved(page, name)}") from exc
