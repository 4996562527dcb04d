"""Local node lifecycle: start anvil (default) or hardhat 2 on loopback in the background, wait until it
answers, and stop exactly the process we started (by PID, after checking it is still ours)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import NodeError
from .tipguard import DEFAULT_MIN_TIP_GWEI

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_bin(name: str) -> Path:
    """Locate anvil/hardhat: $COPYTRADE_<NAME>_BIN, the project's node_modules, then PATH."""
    env = os.environ.get(f"COPYTRADE_{name.upper()}_BIN")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd() / "node_modules" / ".bin" / name, REPO_ROOT / "node_modules" / ".bin" / name]
    for c in candidates:
        if c.is_file():
            return c
    found = shutil.which(name)
    if found:
        return Path(found)
    raise NodeError(f"`{name}` not found: run `npm install` in {REPO_ROOT} (the README's set-up does it) "
                    f"or set COPYTRADE_{name.upper()}_BIN")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True if something listens on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def rpc(url: str, method: str, params: list | None = None, timeout: float = 5.0):
    """One JSON-RPC call on a fresh connection (cheap, no web3 import): for probing a node we may have just
    started, where a kept-alive connection would outlive the process."""
    from .rpc import JsonRpc, RpcError, TransportError, redact

    client = JsonRpc(url, timeout=timeout)
    try:
        return client.call(method, params)
    except TransportError as exc:
        raise NodeError(f"node at {redact(url)} is not answering ({exc}); is it running? "
                        "try `copytrade fork status`") from None
    except RpcError as exc:
        raise NodeError(f"{method} failed on {redact(url)}: {str(exc).split(': ', 1)[-1]}") from None
    finally:
        client.close()


@dataclass
class StartedNode:
    """A node process we started."""

    kind: str
    pid: int
    port: int
    rpc_url: str
    ws_url: str
    chain_id: int
    log_path: Path


def start_node(kind: str, *, port: int | None, chain_id: int, log_dir: Path, fork_url: str | None = None,
               block_time: float | None = None, timeout: float = 30.0,
               min_tip_gwei: float | None = DEFAULT_MIN_TIP_GWEI) -> StartedNode:
    """Start anvil or hardhat in the background on 127.0.0.1 and return when it answers eth_chainId.

    With `min_tip_gwei` (Polygon's 25 gwei by default; None or 0 = off) the node runs behind the tip guard
    (chain/tipguard.py): the recorded PID and port are the guard's, the node is its child on an internal port,
    and transactions tipping under the floor are refused with bor's error text."""
    if kind not in ("anvil", "hardhat"):
        raise NodeError(f"unknown node kind {kind!r}: use anvil or hardhat")
    if min_tip_gwei is not None and min_tip_gwei < 0:
        raise NodeError(f"the minimum tip must be >= 0 gwei, got {min_tip_gwei}")
    port = port or free_port()
    if port_in_use(port):
        raise NodeError(f"port {port} on 127.0.0.1 is already in use; pick another with --port")
    node_port = free_port() if min_tip_gwei else port
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{kind}-{port}.log"
    env = dict(os.environ)
    if kind == "anvil":
        cmd = [str(find_bin("anvil")), "--host", "127.0.0.1", "--port", str(node_port), "--chain-id", str(chain_id),
               "--accounts", "10", "--balance", "1000000", "--prune-history", "1000", "--code-size-limit", "100000"]
        if fork_url:
            cmd += ["--fork-url", fork_url]
        if block_time:
            cmd += ["--block-time", str(block_time)]
        # NOTE: anvil keeps old states under ~/.foundry; a HOME per COPYTRADE_HOME keeps operators apart.
        env["HOME"] = str(log_dir.parent)
        cwd = str(log_dir)
    else:
        hh = find_bin("hardhat")
        config = _hardhat_config(log_dir, chain_id, fork_url, block_time)
        cmd = [str(hh), "node", "--hostname", "127.0.0.1", "--port", str(node_port), "--config", str(config)]
        cwd = str(REPO_ROOT)  # hardhat insists on a local installation next to the working directory
    if min_tip_gwei:
        cmd = [sys.executable, "-m", "copytrade_cli.chain.tipguard", "--listen", str(port), "--upstream",
               str(node_port), "--min-tip-gwei", str(min_tip_gwei), "--", *cmd]
    # NOTE: owner-only (0600): the node prints its fork URL (an API key in the path) and its accounts' keys
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        os.fchmod(log.fileno(), 0o600)
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=env, start_new_session=True)
        except OSError as exc:
            raise NodeError(f"could not start {kind}: {exc}") from None
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-400:].strip().splitlines()
            raise NodeError(f"{kind} exited at start (code {proc.returncode}): {tail[-1] if tail else 'no output'}; "
                            f"log: {log_path}")
        try:
            got = int(rpc(url, "eth_chainId", timeout=1), 16)
            return StartedNode(kind, proc.pid, port, url, f"ws://127.0.0.1:{port}", got, log_path)
        except NodeError:
            time.sleep(0.05)
    stop_pid(proc.pid, kind)
    raise NodeError(f"{kind} did not answer on {url} within {timeout:.0f}s; log: {log_path}")


def _hardhat_config(log_dir: Path, chain_id: int, fork_url: str | None, block_time: float | None) -> Path:
    cfg = {"chainId": chain_id, "allowUnlimitedContractSize": True,
           "accounts": {"mnemonic": "test test test test test test test test test test test junk", "count": 10,
                        "accountsBalance": str(10**24)}}
    if fork_url:
        cfg["forking"] = {"url": fork_url}
    if block_time:
        cfg["mining"] = {"auto": False, "interval": int(block_time * 1000)}
    path = log_dir / "hardhat.config.js"
    path.write_text("module.exports = { solidity: '0.8.24', networks: { hardhat: " + json.dumps(cfg) + " } };\n")
    path.chmod(0o600)  # NOTE: it holds the fork URL
    return path


def pid_alive(pid: int | None) -> bool:
    """True if the PID exists (and is not a zombie)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_pid(pid: int | None, expect: str, timeout: float = 10.0) -> bool:
    """Stop the process we started: SIGTERM, then SIGKILL; refuse a PID that now runs something else."""
    if not pid or not pid_alive(pid):
        return False
    cmd = _cmdline(pid)
    if cmd and expect not in cmd:
        raise NodeError(f"PID {pid} now runs something else ({cmd[:60]!r}); not stopping it")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
