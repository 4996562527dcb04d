"""Polymarket deposit wallets in Python: address derivation, POLY_1271 order signatures, WALLET batch digests.

The wire contract is LIVE-2026 §6 (deposit wallets) and §5.2 (type-3 signatures). Everything here is a pure
function over bytes — no node, no network — so the local CLOB and the local relayer check exactly what the
planted `DepositWallet` contract checks on chain, and tests can compare both with the SDK's own helpers.

- `deposit_wallet_address(owner)`: the SDK's beacon derivation (CREATE2 of an ERC-1967 beacon proxy whose
  immutable args are `abi.encode(factory, bytes32(owner))`), LIVE-2026 §6.1.
- `recover_1271_signer(order_hash, signature, ...)`: parse the 317-byte TypedDataSign wrapper (ECDSA65 |
  app domain separator | hashStruct(order) | ASCII `Order(...)` | uint16 length), optionally inside the
  session-key wrapper, check it binds `order_hash`, and recover the EOA; None when anything does not match.
- `batch_digest(...)` / `recover_batch_signer(...)`: the EIP-712 `Batch` a WALLET relayer call is signed over.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak, to_checksum_address

DEPOSIT_WALLET_FACTORY = "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07"
DEPOSIT_WALLET_BEACON = "0x7A18EDfe055488A3128f01F563e5B479D92ffc3a"
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
SESSION_SIGNER_MAGIC = bytes.fromhex("64926492" * 8)

ORDER_TYPE = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,"
    "uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)
DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
TYPED_DATA_SIGN_PREFIX = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
)
TYPED_DATA_SIGN_TYPEHASH = keccak(text=TYPED_DATA_SIGN_PREFIX + ORDER_TYPE)
CALL_TYPE = "Call(address target,uint256 value,bytes data)"
BATCH_TYPEHASH = keccak(text="Batch(address wallet,uint256 nonce,uint256 deadline,Call[] calls)" + CALL_TYPE)
CALL_TYPEHASH = keccak(text=CALL_TYPE)
WALLET_DOMAIN_NAME = "DepositWallet"
WALLET_DOMAIN_VERSION = "1"
EXCHANGE_DOMAIN_NAME = "Polymarket CTF Exchange"
POLY_1271_SIGNATURE_LENGTH = 65 + 32 + 32 + len(ORDER_TYPE) + 2  # 317

# ERC-1967 beacon proxy with immutable args (Solady LibClone), as the SDK spells it
# (polymarket/_internal/wallet.py `_beacon_deposit_init_code_hash`).
_BEACON_PREFIX_BASE = 0x6100523D8160233D3973
_BEACON_CONST3 = bytes.fromhex("60195155f3363d3d373d3d363d602036600436635c60da")
_BEACON_CONST2 = bytes.fromhex("1b60e01b36527fa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6c")
_BEACON_CONST1 = bytes.fromhex("b3582b35133d50545afa5036515af43d6000803e604d573d6000fd5b3d6000f3")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _hex_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)


def deposit_wallet_args(owner_eoa: str, factory: str = DEPOSIT_WALLET_FACTORY) -> bytes:
    """The wallet's immutable args `abi.encode(address factory, bytes32 leftpad(owner))` (64 bytes)."""
    return abi_encode(["address", "bytes32"], [to_checksum_address(factory), _hex_bytes(owner_eoa).rjust(32, b"\0")])


def deposit_wallet_salt(owner_eoa: str, factory: str = DEPOSIT_WALLET_FACTORY) -> bytes:
    """The CREATE2 salt of an owner's wallet: keccak of its args."""
    return keccak(deposit_wallet_args(owner_eoa, factory))


def beacon_proxy_init_code(args: bytes, beacon: str = DEPOSIT_WALLET_BEACON) -> bytes:
    """The CREATE2 init code of a beacon proxy over `beacon` carrying `args` (the bytes the SDK hashes)."""
    prefix = (_BEACON_PREFIX_BASE + (len(args) << 56)).to_bytes(10, "big")
    return prefix + _hex_bytes(beacon) + _BEACON_CONST3 + _BEACON_CONST2 + _BEACON_CONST1 + args


def create2_address(deployer: str, salt: bytes, init_code_hash: bytes) -> str:
    """`keccak(0xff | deployer | salt | init_code_hash)[12:]`, checksummed."""
    return to_checksum_address(keccak(b"\xff" + _hex_bytes(deployer) + salt + init_code_hash)[12:])


def deposit_wallet_address(
    owner_eoa: str, factory: str = DEPOSIT_WALLET_FACTORY, beacon: str = DEPOSIT_WALLET_BEACON
) -> str:
    """The deposit wallet the factory deploys for `owner_eoa` (the SDK's beacon derivation, LIVE-2026 §6.1)."""
    args = deposit_wallet_args(owner_eoa, factory)
    return create2_address(factory, keccak(args), keccak(beacon_proxy_init_code(args, beacon)))


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 domain separator of `{name, version, chainId, verifyingContract}`."""
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=name), keccak(text=version), chain_id, to_checksum_address(verifying_contract)],
        )
    )


def exchange_domain_separator(chain_id: int, exchange: str, version: str = "2") -> bytes:
    """The CTF exchange's EIP-712 domain separator (V2 = "2", ExchangeV3 = "3")."""
    return domain_separator(EXCHANGE_DOMAIN_NAME, version, chain_id, exchange)


def wallet_domain_separator(chain_id: int, wallet: str) -> bytes:
    """The deposit wallet's own EIP-712 domain separator (batches)."""
    return domain_separator(WALLET_DOMAIN_NAME, WALLET_DOMAIN_VERSION, chain_id, wallet)


def _recover(digest: bytes, sig65: bytes) -> str | None:
    """ecrecover with Ethereum's rules (v 27/28 or 0/1, low-s as OpenZeppelin's ECDSA); None if invalid."""
    if len(sig65) != 65:
        return None
    r, s, v = int.from_bytes(sig65[:32], "big"), int.from_bytes(sig65[32:64], "big"), sig65[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1) or not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        return None
    try:
        pub = keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValidationError, ValueError):
        return None
    return pub.to_checksum_address()


@dataclass(frozen=True)
class SessionSignature:
    """A session-key signature unwrapped: `abi.encode(bytes32 signer, bytes32 0, bytes inner) | 0x6492…` (§5.2)."""

    session_signer: str
    inner: bytes


def unwrap_session_signature(signature: bytes) -> SessionSignature | None:
    """The session signer and inner signature of a wrapped session-key signature; None if it is not one."""
    if len(signature) < 32 + 96 or signature[-32:] != SESSION_SIGNER_MAGIC:
        return None
    body = signature[:-32]
    try:
        signer_id, reserved, inner = abi_decode(["bytes32", "bytes32", "bytes"], body, strict=True)
    except Exception:
        return None
    # NOTE: strict reading (LIVE-2026 §15, how live parses it is unknown): the signer id is a left-padded
    # address, the reserved word is zero and the encoding is canonical (no trailing bytes).
    if signer_id[:12] != b"\0" * 12 or reserved != b"\0" * 32:
        return None
    if abi_encode(["bytes32", "bytes32", "bytes"], [signer_id, reserved, inner]) != body:
        return None
    return SessionSignature(to_checksum_address(signer_id[12:]), bytes(inner))


def wrap_session_signature(session_signer: str, inner: bytes) -> bytes:
    """Wrap `inner` as a session-key signature (the SDK's `wrap_deposit_wallet_session_signer_signature`)."""
    signer_id = _hex_bytes(session_signer).rjust(32, b"\0")
    return abi_encode(["bytes32", "bytes32", "bytes"], [signer_id, b"\0" * 32, inner]) + SESSION_SIGNER_MAGIC


def recover_1271_signer(
    order_hash: bytes, signature: bytes, chain_id: int, wallet: str, exchange: str, version: str = "2"
) -> str | None:
    """The EOA that signed a POLY_1271 (type 3) order for `wallet`, or None if the wrapper does not bind it.

    Accepts the plain 317-byte TypedDataSign wrapper (owner) or the same inside the session-key wrapper;
    for a session signature the recovered EOA must equal the signer the wrapper names. Checks, as
    LIVE-2026 §6.5: the app domain separator is the exchange's (chain, address, version), the contents type
    is exactly `Order(...)`, `keccak(0x1901|appSep|contents) == order_hash`, and ECDSA over
    `keccak(0x1901|appSep|hashStruct(TypedDataSign))` with `{name:"DepositWallet", version:"1", chainId,
    verifyingContract: wallet, salt: 0}`. The caller decides whether the EOA is the owner or a live signer.
    """
    signature = bytes(signature)
    session = unwrap_session_signature(signature)
    if session is not None:
        signature = session.inner
    if len(signature) != POLY_1271_SIGNATURE_LENGTH:
        return None
    sig65, app_sep, contents = signature[:65], signature[65:97], signature[97:129]
    contents_type, type_len = signature[129:-2], int.from_bytes(signature[-2:], "big")
    if type_len != len(ORDER_TYPE) or contents_type != ORDER_TYPE.encode():
        return None
    if app_sep != exchange_domain_separator(chain_id, exchange, version):
        return None
    if keccak(b"\x19\x01" + app_sep + contents) != bytes(order_hash):
        return None
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
            [
                TYPED_DATA_SIGN_TYPEHASH,
                contents,
                keccak(text=WALLET_DOMAIN_NAME),
                keccak(text=WALLET_DOMAIN_VERSION),
                chain_id,
                to_checksum_address(wallet),
                b"\0" * 32,
            ],
        )
    )
    signer = _recover(keccak(b"\x19\x01" + app_sep + struct_hash), sig65)
    if signer is None or (session is not None and signer != session.session_signer):
        return None
    return signer


@dataclass(frozen=True)
class Call:
    """One call of a WALLET batch (`Call(address target,uint256 value,bytes data)`)."""

    target: str
    value: int
    data: bytes


def _call_hash(call: Call) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "address", "uint256", "bytes32"],
            [CALL_TYPEHASH, to_checksum_address(call.target), int(call.value), keccak(_hex_bytes(call.data))],
        )
    )


def batch_struct_hash(wallet: str, nonce: int, deadline: int, calls: Sequence[Call]) -> bytes:
    """hashStruct(Batch(wallet, nonce, deadline, calls))."""
    calls_hash = keccak(b"".join(_call_hash(c) for c in calls))
    return keccak(
        abi_encode(
            ["bytes32", "address", "uint256", "uint256", "bytes32"],
            [BATCH_TYPEHASH, to_checksum_address(wallet), int(nonce), int(deadline), calls_hash],
        )
    )


def batch_digest(chain_id: int, wallet: str, nonce: int, deadline: int, calls: Sequence[Call]) -> bytes:
    """The EIP-712 digest a WALLET batch is signed over (domain `DepositWallet` v1 at `wallet`)."""
    return keccak(
        b"\x19\x01" + wallet_domain_separator(chain_id, wallet) + batch_struct_hash(wallet, nonce, deadline, calls)
    )


def recover_batch_signer(
    chain_id: int, wallet: str, nonce: int, deadline: int, calls: Sequence[Call], signature: bytes
) -> str | None:
    """The EOA that signed a batch (65-byte owner signature, or session-wrapped); None if invalid."""
    signature = bytes(signature)
    session = unwrap_session_signature(signature)
    inner = session.inner if session else signature
    signer = _recover(batch_digest(chain_id, wallet, nonce, deadline, calls), inner)
    if signer is None or (session is not None and signer != session.session_signer):
        return None
    return signer


def calls_from_wire(calls: Iterable[dict]) -> list[Call]:
    """Batch calls from the relayer's JSON (`[{"target","value","data"}]`); ValueError on a malformed one."""
    out = []
    for c in calls:
        if not isinstance(c, dict) or set(c) - {"target", "value", "data"}:
            raise ValueError("each call must be {target, value, data}")
        out.append(Call(to_checksum_address(c["target"]), int(str(c.get("value", "0"))), _hex_bytes(c.get("data") or "0x")))
    return out
