"""axe-core audits of the main pages in Chromium: no serious or critical violations."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import LiveServer

BLOCKING = {"serious", "critical"}
PUBLIC_PAGES = ["/", "/auth/login", "/no-such-page"]


def audit(page: Any) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_pass_axe(live_server: LiveServer, page: Any, path: str) -> None:
    page.goto(live_server(path))
    assert audit(page) == []
