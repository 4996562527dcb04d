"""The real ConditionalTokens (Gnosis, solc 0.5.10) on the offline fork, from the npm package
`@gnosis.pm/conditional-tokens-contracts@1.0.3` (package.json): its `deployedBytecode` planted at Polymarket's
CTF address with setCode, plus the two ERC-165 registrations its constructor would have stored.

Storage layout (solc 0.5, inheritance order ERC165 -> ERC1155 -> ConditionalTokens):
slot 0 `ERC165._supportedInterfaces` (mapping(bytes4 => bool)), slot 1 `ERC1155._balances`,
slot 2 `ERC1155._operatorApprovals`, slot 3 `payoutNumerators`, slot 4 `payoutDenominator`. A mapping entry
lives at keccak256(key padded to 32 bytes | slot); a bytes4 key is left-aligned (right-padded with zeros).
`tests/integration/test_real_ctf.py` checks the slot against a constructor-deployed copy.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_utils import keccak

from copytrade_cli.chain.node import REPO_ROOT
from copytrade_cli.errors import DeploymentError

PACKAGE = "@gnosis.pm/conditional-tokens-contracts"
ARTIFACT = Path("node_modules") / PACKAGE / "build" / "contracts" / "ConditionalTokens.json"
SUPPORTED_INTERFACES_SLOT = 0
INTERFACE_IDS = (bytes.fromhex("01ffc9a7"), bytes.fromhex("d9b67a26"))  # ERC-165, ERC-1155


@lru_cache(maxsize=1)
def artifact() -> dict[str, Any]:
    """The package's ConditionalTokens build artifact (abi, bytecode, deployedBytecode)."""
    for root in (Path.cwd(), REPO_ROOT):
        path = root / ARTIFACT
        if path.is_file():
            return json.loads(path.read_text())
    raise DeploymentError(f"{PACKAGE} is not installed: run `npm ci` in {REPO_ROOT} (scripts/setup.sh does it)")


def ctf_abi() -> list[dict]:
    """The real ConditionalTokens ABI."""
    return artifact()["abi"]


def runtime_code() -> bytes:
    """The real ConditionalTokens runtime code (no immutables: it plants as is)."""
    return bytes.fromhex(artifact()["deployedBytecode"][2:])


def interface_slot(interface_id: bytes) -> int:
    """The storage slot of `_supportedInterfaces[interface_id]`."""
    return int.from_bytes(keccak(interface_id.ljust(32, b"\0") + SUPPORTED_INTERFACES_SLOT.to_bytes(32, "big")), "big")


def plant_real_ctf(w3: Any, cheats: Any, address: str) -> bool:
    """Put the real ConditionalTokens at `address` with its ERC-165 registrations; False if already there."""
    code = runtime_code()
    if bytes(w3.eth.get_code(address)) == code:
        return False
    cheats.set_code(address, code)
    for iid in INTERFACE_IDS:
        cheats.set_storage_at(address, interface_slot(iid), 1)
    return True


def deploy_real_ctf(w3: Any, account: Any) -> str:
    """Deploy the real ConditionalTokens with its constructor (for tests that want it at a fresh address)."""
    from copytrade_cli.chain.lanes import TxLane
    from copytrade_cli.chain.rpc import wait_receipt

    lane = TxLane(w3, account)
    h = lane.send({"data": artifact()["bytecode"]}, gas=6_000_000)
    return wait_receipt(w3, h, timeout=60)["contractAddress"]
