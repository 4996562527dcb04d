"""The --html reports open in headless Chromium (Debian's package) with no console error or exception, and the
screenshot shows the plots (docs/img/backtest-report.png is the one the docs show)."""
from __future__ import annotations

import asyncio
import base64
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from copytrade_cli.analysis.backtest import Options, run_backtest
from copytrade_cli.analysis.history import History
from copytrade_cli.analysis.html import backtest_html, report_html
from copytrade_cli.analysis.report import build_report
from copytrade_cli.settings import Settings
from copytrade_cli.supervisor.decide import validate_follow

from .test_leaders_analysis import FOLLOWER, LEADER, raw_history

DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "backtest-report.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _cdp_open(ws_url: str, page_url: str) -> tuple[list[str], bytes, dict]:
    """Navigate with the DevTools protocol; collect console errors / exceptions / failed loads; screenshot."""
    import websockets

    errors: list[str] = []
    async with websockets.connect(ws_url, max_size=64 << 20) as ws:
        seq = 0
        pending: dict[int, asyncio.Future] = {}

        async def reader():
            async for raw in ws:
                msg = json.loads(raw)
                if "id" in msg and msg["id"] in pending:
                    pending.pop(msg["id"]).set_result(msg)
                    continue
                m, p = msg.get("method"), msg.get("params", {})
                if m == "Runtime.exceptionThrown":
                    errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:200])
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append("console: " + json.dumps(p.get("args"))[:200])
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    errors.append("log: " + p["entry"].get("text", "")[:200])
                elif m == "Network.loadingFailed":
                    errors.append("load failed: " + p.get("errorText", ""))

        async def call(method, **params):
            nonlocal seq
            seq += 1
            fut = asyncio.get_running_loop().create_future()
            pending[seq] = fut
            await ws.send(json.dumps({"id": seq, "method": method, "params": params}))
            return (await asyncio.wait_for(fut, 60)).get("result", {})

        task = asyncio.create_task(reader())
        for domain in ("Page", "Runtime", "Log", "Network"):
            await call(f"{domain}.enable")
        await call("Emulation.setDeviceMetricsOverride", width=1200, height=1700, deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", url=page_url)
        deadline = time.time() + 60  # the initial about:blank fires a load event too: wait for OUR page
        while time.time() < deadline:
            st = await call("Runtime.evaluate", returnByValue=True,
                            expression="document.readyState + ' ' + location.href")
            if st.get("result", {}).get("value") == f"complete {page_url}":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{page_url} did not load")
        await asyncio.sleep(0.5)
        info = await call("Runtime.evaluate", returnByValue=True,
                          expression="({svgs: document.querySelectorAll('svg').length, title: document.title})")
        shot = await call("Page.captureScreenshot", format="png")
        task.cancel()
    return errors, base64.b64decode(shot["data"]), info["result"]["value"]


def _open_in_chromium(path: Path, tmp: Path) -> tuple[list[str], bytes, dict]:
    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is missing: scripts/setup.sh installs it (apt-get install chromium)"
    port = _free_port()
    proc = subprocess.Popen([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                             f"--user-data-dir={tmp / 'chromium-profile'}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, targets = time.time() + 30, None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=1) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert targets, "chromium's DevTools endpoint did not come up"
        return asyncio.run(_cdp_open(targets[0]["webSocketDebuggerUrl"], path.as_uri()))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(120)
def test_backtest_and_report_html_open_in_headless_chromium(tmp_path):
    h = History.from_raw(raw_history())
    bt = run_backtest(h, validate_follow(follower=FOLLOWER, leader=LEADER, sizing="fixed", amount="10"),
                      Settings(COPYTRADE_HOME=str(tmp_path), COPY_TRADING_DAILY_CAP_USD="25"), Options())
    page = tmp_path / "backtest.html"
    page.write_text(backtest_html(bt))
    text = page.read_text()
    # self-contained: no script, no stylesheet or image fetched from anywhere
    assert "<script" not in text and "<link" not in text and not re.findall(r'(?:src|href)="(?!#)[^"]+"', text)
    errors, png, info = _open_in_chromium(page, tmp_path)
    assert errors == []
    assert info == {"svgs": 3, "title": "Copy backtest"}  # equity, PnL per market, skips by reason
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    if os.environ.get("COPYTRADE_UPDATE_DOCS") == "1":  # refresh the screenshot docs/backtest.md shows
        DOCS_SHOT.write_bytes(png)
    assert DOCS_SHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rep = tmp_path / "report.html"
    rep.write_text(report_html(build_report(h)))
    errors, png, info = _open_in_chromium(rep, tmp_path)
    assert errors == [] and info == {"svgs": 2, "title": "Leader report"} and len(png) > 20_000
