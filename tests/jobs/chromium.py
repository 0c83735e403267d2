"""A real headless Chromium driven over the DevTools protocol, for testing pages as users see them.

Debian's `chromium` package (`/usr/bin/chromium`; CI installs it). Chromium listens on a
loopback port it picks (`--remote-debugging-port=0`, read back from `DevToolsActivePort`); the
test talks to the page's websocket with aiohttp (already installed: Ray's dashboard needs it).
Nothing is fetched from the network: background networking, component updates and first-run
tasks are off, and `requests` records every URL the page asks for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One tab: `call` sends a DevTools command, `evaluate` runs JS and returns its value."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self.requests: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        my_id = self._next
        await self.ws.send_str(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg: dict[str, Any]) -> None:
        self.events.append(msg)
        if msg.get("method") == "Network.requestWillBeSent":
            self.requests.append(msg["params"]["request"]["url"])

    async def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for msg in self.events:
            if msg.get("method") == method:
                self.events.remove(msg)
                return msg
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(method)
            msg = json.loads((await asyncio.wait_for(self.ws.receive(), left)).data)
            if msg.get("method") == method:
                self._event(msg)
                self.events.remove(msg)
                return msg
            self._event(msg)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired")

    async def screenshot(self, path: Path) -> bytes:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(shot["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data


async def _run_with_page(binary: str, profile: Path, scenario, size: tuple[int, int]) -> Any:
    import aiohttp

    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         f"--window-size={size[0]},{size[1]}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json(content_type=None)
            target = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await page.call("Network.enable")
                await page.call("Runtime.enable")
                return await scenario(page)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def with_page(profile: Path, scenario, size: tuple[int, int] = (1280, 2000)) -> Any:
    """Start Chromium with a fresh profile, run `await scenario(page)`, stop Chromium."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("chromium is not installed")
    profile.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_run_with_page(binary, profile, scenario, size))
