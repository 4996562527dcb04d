"""The local relayer's wire formats: WALLET bodies in, factory calldata out (LIVE-2026 §6.2)."""
from __future__ import annotations

from eth_abi import encode
from eth_utils import is_address, keccak, to_checksum_address

from copytrade_cli.polymarket import wallets as W

from .relayer_auth import RelayerRejection

MAX_CALLS = 32  # DepositWallet.vy MAX_CALLS / MAX_DATA
MAX_DATA = 1024
AUTHORIZE_SELECTOR = keccak(text="authorizeSessionSigner(address,uint256)")[:4]
REVOKE_SELECTOR = keccak(text="revokeSessionSigner(address)")[:4]
_DEPLOY = keccak(text="deploy(address)")[:4]
_EXECUTE = keccak(text="execute(address,(address,uint256,bytes)[],uint256,uint256,bytes)")[:4]


def parse_batch(body: dict, params: dict):
    """(wallet, nonce, deadline, calls, signature) of a WALLET body; a 400 for anything malformed."""
    wallet = params.get("depositWallet")
    if not isinstance(wallet, str) or not is_address(wallet):
        raise RelayerRejection("invalid 'depositWallet' field: must be an address")
    nonce, deadline = body.get("nonce"), params.get("deadline")
    if not isinstance(nonce, str) or not nonce.isdigit():
        raise RelayerRejection("invalid 'nonce' field: must be a decimal string")
    if not isinstance(deadline, str) or not deadline.isdigit():
        raise RelayerRejection("invalid 'deadline' field: must be a decimal string of unix seconds")
    raw_calls = params.get("calls")
    if not isinstance(raw_calls, list) or not raw_calls:
        raise RelayerRejection("invalid 'calls' field: expected a non-empty list")
    if len(raw_calls) > MAX_CALLS:
        raise RelayerRejection(f"too many calls: {len(raw_calls)} (at most {MAX_CALLS} per batch)")
    try:
        calls = W.calls_from_wire(raw_calls)
    except (ValueError, TypeError, KeyError) as exc:
        raise RelayerRejection(f"invalid 'calls' field: {exc}") from None
    if any(len(c.data) > MAX_DATA for c in calls):
        raise RelayerRejection(f"invalid 'calls' field: call data over {MAX_DATA} bytes")
    sig = body.get("signature")
    try:
        signature = bytes.fromhex(sig[2:]) if isinstance(sig, str) and sig.startswith("0x") else None
    except ValueError:
        signature = None
    if not signature:
        raise RelayerRejection("invalid 'signature' field: must be 0x-prefixed hex")
    return to_checksum_address(wallet), int(nonce), int(deadline), calls, signature


def deploy_calldata(owner: str) -> str:
    """`factory.deploy(owner)` (WALLET-CREATE)."""
    return "0x" + (_DEPLOY + encode(["address"], [owner])).hex()


def execute_calldata(wallet: str, calls: list[W.Call], nonce: int, deadline: int, signature: bytes) -> str:
    """`factory.execute(wallet, calls, nonce, deadline, signature)` (WALLET)."""
    args = encode(["address", "(address,uint256,bytes)[]", "uint256", "uint256", "bytes"],
                  [wallet, [(c.target, c.value, c.data) for c in calls], nonce, deadline, signature])
    return "0x" + (_EXECUTE + args).hex()


def authorize_call_data(signer: str, valid_until: int) -> bytes:
    """`wallet.authorizeSessionSigner(signer, validUntil)`."""
    return AUTHORIZE_SELECTOR + encode(["address", "uint256"], [signer, valid_until])


def revoke_call_data(signer: str) -> bytes:
    """`wallet.revokeSessionSigner(signer)`."""
    return REVOKE_SELECTOR + encode(["address"], [signer])
