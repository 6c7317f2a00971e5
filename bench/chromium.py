"""Headless Debian Chromium driven over the DevTools protocol (no browser download, no
Playwright): a fake microphone fed from a WAV file, JavaScript evaluated in the page,
pages opened one after another in one browser, screenshots."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._next_id = 0

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events in between are skipped)."""
        self._next_id += 1
        await self.ws.send(json.dumps({"id": self._next_id, "method": method,
                                       "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply["result"]

    async def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The value of ``expression`` (with ``await_promise``: of the promise it gives)."""
        result = await self.command("Runtime.evaluate", expression=expression,
                                    returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value (the last one on timeout)."""
        value = None
        for _ in range(int(timeout_s * 10)):
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        return value

    async def open(self, url: str) -> None:
        """Load ``url`` in this tab (the previous page, and its calls, go away; a URL that
        differs only in its fragment loads anew too)."""
        await self.command("Page.navigate", url="about:blank")
        await self.wait_for("location.href === 'about:blank' && document.readyState === "
                            "'complete'", 15)
        await self.command("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== "
                            "'about:blank'", 15)

    async def screenshot(self, path: Path, width: int = 1000, height: int = 900,
                         mobile: bool = False) -> Path:
        """A PNG of the page at ``width`` x ``height`` CSS pixels (``mobile``: a phone)."""
        await self.command("Emulation.setDeviceMetricsOverride", width=width, height=height,
                           deviceScaleFactor=1, mobile=mobile)
        try:
            shot = await self.command("Page.captureScreenshot", format="png")
        finally:
            await self.command("Emulation.clearDeviceMetricsOverride")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def chromium_page(url: str, microphone_wav: Path, profile: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={profile}", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            if process.returncode is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield Page(ws)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
