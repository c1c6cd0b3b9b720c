"""Browser journeys: the app served on a free local port, driven in Debian's headless Chromium."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import BASE_TEST_CONFIG, postgres_url
from webapp import create_app
from webapp.extensions import db

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@dataclass
class LiveServer:
    url: str
    app: Flask

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture
def live_config() -> dict[str, Any]:
    """Configuration overrides for the served app (a test module may redefine this)."""
    return {}


@pytest.fixture
def live_server(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, live_config: dict[str, Any]
) -> Iterator[LiveServer]:
    """The app on a real database, serving HTTP on 127.0.0.1 in a background thread.

    Its requests commit for real (a browser session spans many requests), so the PostgreSQL
    tables are emptied afterwards.
    """
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    else:
        request.getfixturevalue("postgres_engine")
        url = postgres_url()
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, **live_config})
    with app.app_context():
        db.create_all(bind_key=None)  # the primary only: replica binds are read-only standbys
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["SITE_URL"] = f"http://127.0.0.1:{server.server_port}"  # the emailed links
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            if backend == "postgresql":
                tables = ", ".join(t.name for t in db.metadata.sorted_tables)
                with db.engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)  # generous: CI shares 2 cores
    yield page
    context.close()


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(30_000)  # generous: CI shares 2 cores
    yield page
    context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/browser/screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fill_sign_in(page: Any, live_server: LiveServer, login: str, password: str) -> None:
    """Fill in and send the sign-in form (the caller checks where it leads)."""
    page.goto(live_server("/auth/login"))
    page.get_by_label("Email or username").fill(login)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_in(page: Any, live_server: LiveServer, login: str, password: str | None = None) -> None:
    """Sign in through the form and wait for the home page."""
    from tests.factories import PASSWORD

    fill_sign_in(page, live_server, login, password or PASSWORD)
    page.wait_for_url(live_server("/"))
