# pragma version ~=0.4.3
"""
@title DepositWallet (the local world's imitation of Polymarket's deposit wallet)
@notice The implementation behind every deposit wallet's ERC-1967 beacon proxy (LIVE-2026 §6).
        - ERC-1271 `isValidSignature(hash, sig)` for POLY_1271 (type 3) orders: the SDK's 317-byte
          TypedDataSign wrapper (ECDSA65 | app domain separator | hashStruct(Order) | "Order(...)" | uint16),
          signed by the owner, or the same inside the session-key wrapper signed by a live session signer.
        - WALLET batches `Batch(address wallet,uint256 nonce,uint256 deadline,Call[] calls)` under the
          EIP-712 domain {name:"DepositWallet", version:"1", chainId, verifyingContract: this wallet},
          run only through the factory (the relayer's entry), with an on-chain nonce and a deadline.
        - `authorizeSessionSigner` / `revokeSessionSigner`: only the wallet itself (through a batch).
        - ERC-1155 / ERC-721 receiver hooks (the real CTF calls them on every transfer in).
@dev The owner and factory are the proxy's immutable args `abi.encode(factory, bytes32(owner))`, appended
     to the proxy's runtime code at byte 0x52 (Solady LibClone's beacon proxy, the bytes the SDK derives the
     address from). In a delegatecall CODECOPY would read this implementation's code, so they are read with
     EXTCODECOPY of `self` (the proxy). Nothing needs initialising: the wallet works as soon as it exists.
     Where live's behaviour is unknown this takes the stricter reading (docs/live-assumptions.md): only the
     `Order` contents type is accepted (no generic ERC-7739 / PersonalSign path), a plain signature must be the
     owner's and a session-wrapped one a live session signer's, and a session signer's batch may not call the
     wallet itself (it cannot authorise further signers).
"""

MAX_CALLS: constant(uint256) = 32
MAX_DATA: constant(uint256) = 1024
MAX_SIG: constant(uint256) = 512
ARGS_OFFSET: constant(uint256) = 82  # 0x52: the proxy runtime before its immutable args

struct Call:
    target: address
    value: uint256
    data: Bytes[MAX_DATA]

ERC1271_MAGIC: constant(bytes4) = 0x1626ba7e
ERC1271_FAIL: constant(bytes4) = 0xffffffff
SESSION_MAGIC: constant(bytes32) = 0x6492649264926492649264926492649264926492649264926492649264926492
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

ORDER_TYPE: constant(String[186]) = "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
ORDER_TYPE_HASH: constant(bytes32) = keccak256(ORDER_TYPE)
# keccak("TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)" + ORDER_TYPE)
TYPED_DATA_SIGN_TYPEHASH: constant(bytes32) = 0x6ba028565cb324c2aa02bb714b9816d0bddd557a2f33bb36cf13272a4256bd42
DOMAIN_TYPEHASH: constant(bytes32) = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
NAME_HASH: constant(bytes32) = keccak256("DepositWallet")
VERSION_HASH: constant(bytes32) = keccak256("1")
BATCH_TYPEHASH: constant(bytes32) = keccak256("Batch(address wallet,uint256 nonce,uint256 deadline,Call[] calls)Call(address target,uint256 value,bytes data)")
CALL_TYPEHASH: constant(bytes32) = keccak256("Call(address target,uint256 value,bytes data)")

# The next batch nonce (incremented by each executed batch).
nonce: public(uint256)
# Session signer -> validUntil (unix seconds); 0 = not a signer.
sessionSigners: public(HashMap[address, uint256])

event BatchExecuted:
    nonce: indexed(uint256)
    signer: indexed(address)
    calls: uint256

event SessionSignerAuthorized:
    signer: indexed(address)
    validUntil: uint256

event SessionSignerRevoked:
    signer: indexed(address)


@internal
@view
def _args() -> (address, address):
    me: address = self
    args: Bytes[64] = slice(me.code, ARGS_OFFSET, 64)
    return extract32(args, 0, output_type=address), extract32(args, 32, output_type=address)


@external
@view
def owner() -> address:
    """@notice The wallet's owner EOA (from the proxy's immutable args)."""
    return self._args()[1]


@external
@view
def factory() -> address:
    """@notice The factory that deployed this wallet (the only caller of `execute`)."""
    return self._args()[0]


@external
@view
def domainSeparator() -> bytes32:
    """@notice EIP-712 domain separator of this wallet's batches."""
    return self._domain_separator()


@internal
@view
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@internal
@pure
def _recover(digest: bytes32, sig: Bytes[65]) -> address:
    """ecrecover with low-s and v in {0, 1, 27, 28}; empty(address) if invalid."""
    if len(sig) != 65:
        return empty(address)
    r: uint256 = convert(extract32(sig, 0), uint256)
    s: uint256 = convert(extract32(sig, 32), uint256)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    if v < 27:
        v += 27
    if (v != 27 and v != 28) or s > SECP256K1_HALF_N or r == 0 or s == 0:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@pure
def _unwrap_session(sig: Bytes[MAX_SIG], inner_len: uint256) -> (address, Bytes[317]):
    """abi.encode(bytes32 signer, bytes32 0, bytes inner) | SESSION_MAGIC, canonical only (LIVE-2026 §5.2);
    `inner_len` is 317 (order) or 65 (batch)."""
    padded: uint256 = (inner_len + 31) // 32 * 32
    if len(sig) != 128 + padded + 32 or extract32(sig, len(sig) - 32) != SESSION_MAGIC:
        return empty(address), b""
    signer_id: uint256 = convert(extract32(sig, 0), uint256)
    if signer_id >> 160 != 0 or signer_id == 0 or extract32(sig, 32) != empty(bytes32):
        return empty(address), b""
    if convert(extract32(sig, 64), uint256) != 96 or convert(extract32(sig, 96), uint256) != inner_len:
        return empty(address), b""
    pad: uint256 = padded - inner_len
    if pad > 0:
        last: uint256 = convert(extract32(sig, 128 + padded - 32), uint256)
        if last & ((1 << (pad * 8)) - 1) != 0:
            return empty(address), b""
    signer: address = convert(convert(signer_id, uint160), address)
    if inner_len == 65:
        return signer, slice(sig, 128, 65)
    return signer, slice(sig, 128, 317)


@internal
@view
def _order_signer(order_hash: bytes32, sig: Bytes[317]) -> address:
    """The EOA behind a 317-byte TypedDataSign wrapper bound to `order_hash`; empty(address) if it is not."""
    if len(sig) != 317:
        return empty(address)
    if convert(extract32(sig, 285), uint256) & 65535 != 186:
        return empty(address)
    if keccak256(slice(sig, 129, 186)) != ORDER_TYPE_HASH:
        return empty(address)
    app_separator: bytes32 = extract32(sig, 65)
    contents: bytes32 = extract32(sig, 97)
    if keccak256(concat(x"1901", app_separator, contents)) != order_hash:
        return empty(address)
    struct_hash: bytes32 = keccak256(abi_encode(
        TYPED_DATA_SIGN_TYPEHASH, contents, NAME_HASH, VERSION_HASH, chain.id, self, empty(bytes32)))
    return self._recover(keccak256(concat(x"1901", app_separator, struct_hash)), slice(sig, 0, 65))


@internal
@view
def _is_live_session_signer(signer: address) -> bool:
    return signer != empty(address) and self.sessionSigners[signer] >= block.timestamp


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[MAX_SIG]) -> bytes4:
    """@notice ERC-1271: 0x1626ba7e iff `signature` is a POLY_1271 order signature for `hash` by the owner
               (plain 317-byte wrapper) or by a live session signer (session-wrapped); 0xffffffff otherwise."""
    if len(signature) == 317:
        if self._order_signer(hash, slice(signature, 0, 317)) == self._args()[1]:
            return ERC1271_MAGIC
        return ERC1271_FAIL
    named: address = empty(address)
    inner: Bytes[317] = b""
    named, inner = self._unwrap_session(signature, 317)
    if named == empty(address) or not self._is_live_session_signer(named):
        return ERC1271_FAIL
    if self._order_signer(hash, inner) != named:
        return ERC1271_FAIL
    return ERC1271_MAGIC


@internal
@view
def _batch_digest(calls: DynArray[Call, MAX_CALLS], nonce: uint256, deadline: uint256) -> bytes32:
    hashes: DynArray[bytes32, MAX_CALLS] = []
    for c: Call in calls:
        hashes.append(keccak256(abi_encode(CALL_TYPEHASH, c.target, c.value, keccak256(c.data))))
    # abi_encode of one dynamic array = offset word | length word | elements: the elements are what EIP-712 hashes.
    packed: Bytes[64 + 32 * MAX_CALLS] = abi_encode(hashes)
    calls_hash: bytes32 = keccak256(slice(packed, 64, 32 * len(hashes)))
    struct_hash: bytes32 = keccak256(abi_encode(BATCH_TYPEHASH, self, nonce, deadline, calls_hash))
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@external
@view
def batchDigest(calls: DynArray[Call, MAX_CALLS], nonce: uint256, deadline: uint256) -> bytes32:
    """@notice The EIP-712 digest a batch with these calls, nonce and deadline is signed over."""
    return self._batch_digest(calls, nonce, deadline)


@external
def execute(calls: DynArray[Call, MAX_CALLS], nonce: uint256, deadline: uint256, signature: Bytes[MAX_SIG]):
    """@notice Run a signed WALLET batch (only through the factory, i.e. the relayer's entry)."""
    factory: address = empty(address)
    owner: address = empty(address)
    factory, owner = self._args()
    assert msg.sender == factory, "DepositWallet: only the factory"
    assert block.timestamp <= deadline, "DepositWallet: batch deadline passed"
    assert nonce == self.nonce, "DepositWallet: bad nonce"
    digest: bytes32 = self._batch_digest(calls, nonce, deadline)
    signer: address = empty(address)
    if len(signature) == 65:
        signer = self._recover(digest, slice(signature, 0, 65))
        assert signer == owner, "DepositWallet: invalid signature"
    else:
        named: address = empty(address)
        inner: Bytes[317] = b""
        named, inner = self._unwrap_session(signature, 65)
        assert self._is_live_session_signer(named), "DepositWallet: invalid signature"
        signer = self._recover(digest, slice(inner, 0, 65))
        assert signer == named, "DepositWallet: invalid signature"
        for c: Call in calls:
            assert c.target != self, "DepositWallet: session signer cannot call the wallet"
    self.nonce = nonce + 1
    for c: Call in calls:
        raw_call(c.target, c.data, value=c.value)
    log BatchExecuted(nonce=nonce, signer=signer, calls=len(calls))


@external
def authorizeSessionSigner(signer: address, validUntil: uint256):
    """@notice Let `signer` sign orders (and batches) for this wallet until `validUntil`; only via a batch."""
    assert msg.sender == self, "DepositWallet: only the wallet"
    assert signer != empty(address), "DepositWallet: zero signer"
    assert validUntil > block.timestamp, "DepositWallet: validUntil in the past"
    self.sessionSigners[signer] = validUntil
    log SessionSignerAuthorized(signer=signer, validUntil=validUntil)


@external
def revokeSessionSigner(signer: address):
    """@notice Remove a session signer; only via a batch."""
    assert msg.sender == self, "DepositWallet: only the wallet"
    self.sessionSigners[signer] = 0
    log SessionSignerRevoked(signer=signer)


@external
@view
def onERC1155Received(operator: address, sender: address, id: uint256, amount: uint256, data: Bytes[1024]) -> bytes4:
    return 0xf23a6e61


@external
@view
def onERC1155BatchReceived(operator: address, sender: address, ids: DynArray[uint256, 128],
                           amounts: DynArray[uint256, 128], data: Bytes[1024]) -> bytes4:
    return 0xbc197c81


@external
@view
def onERC721Received(operator: address, sender: address, id: uint256, data: Bytes[1024]) -> bytes4:
    return 0x150b7a02


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """@notice ERC-165: ERC-165, ERC-1155 receiver, ERC-721 receiver, ERC-1271."""
    return interface_id in [0x01ffc9a7, 0x4e2312e0, 0x150b7a02, 0x1626ba7e]


@external
@payable
def __default__():
    pass
