"""A real API server on a socket and a headless Chromium page on it, for the console's browser tests.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``scripts/services.sh``);
Playwright only drives it and never downloads a browser.  Every page fails its
test on a console error, an uncaught exception, or a warning the console logs
itself (it warns when one of its API calls fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from cloud.server import run as run_api
from cloud.settings import ApiSettings

CHROMIUM = "/usr/bin/chromium"
# Page assertions wait this long (Playwright's default is 5 s): the suite runs on busy
# 2-core machines.  Time limits the tests mean (a move shown within 2 s) are explicit.
expect.set_options(timeout=15_000)
#: Where screenshots go: docs/screenshots when regenerating the README's, else the test's tmp dir.
SCREENSHOTS_ENV = "TAGLEDGER_SCREENSHOTS"


@contextlib.asynccontextmanager
async def api_server(settings: ApiSettings) -> AsyncIterator[str]:
    """The API (``cloud.server.run``, as ``tagledger api`` runs it) on a free port; yields its base URL."""
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_api(settings, on_started=started.set_result), name="console-test-api")
    try:
        done, _ = await asyncio.wait({task, started}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if started not in done:
            raise RuntimeError(f"the API did not start: {task.exception() if task.done() else 'timeout'}")
        yield started.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Tab:
    page: Page
    problems: list[str] = field(default_factory=list)
    shots: Path = Path()

    async def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def version(self) -> int:
        return int(await self.page.evaluate("Number(document.body.dataset.version || 0)"))

    async def refreshed_after(self, version: int, timeout_ms: float = 10_000) -> None:
        await self.page.wait_for_function(f"Number(document.body.dataset.version || 0) > {version}", timeout=timeout_ms)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def tab(browser: Browser, shots: Path) -> AsyncIterator[Tab]:
    # A tablet in landscape.
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    opened = Tab(page, shots=Path(os.environ.get(SCREENSHOTS_ENV) or shots))
    opened.shots.mkdir(parents=True, exist_ok=True)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" or (message.type == "warning" and "tagledger console" in message.text):
            opened.problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: opened.problems.append(f"uncaught: {exc}"))
    try:
        yield opened
    finally:
        await context.close()
    assert opened.problems == [], opened.problems
