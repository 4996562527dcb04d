# pragma version ~=0.4.3
"""
@title MockExchangeV2
@notice Settlement half of Polymarket's CTF Exchange V2 for the offline fork, as strict as the real one:
        the same `matchOrders` ABI, EIP-712 order hash and OrderFilled / OrdersMatched / FeeCharged events,
        and on chain the same refusals: operator-only matching, a trading pause, order signatures checked
        for every signature type, fees in collateral bounded by a max fee rate, fills bounded per order.
@dev Planted at the real exchange address (and a second time at the neg-risk exchange's) with
     anvil_setCode. `collateral` and `ctf` are immutables (they travel with the runtime code); admin,
     operators, fee receiver and max fee rate are storage, set after planting via the one-shot
     initialize(admin). The EIP-712 domain separator is computed at call time from chain.id and `self`,
     so each planted instance has its own verifyingContract.

     Revert reasons are Error(string) carrying the real contract's custom error NAME (NotOperator, Paused,
     InvalidSignature, FeeExceedsMaxRate, ...): the real exchange reverts with the custom error itself.

     Signatures (the real Signatures.sol; docs/live-assumptions.md):
       0 EOA        ecrecover(orderHash, sig) == signer == maker
       1 POLY_PROXY ecrecover == signer, and maker == the signer's Polymarket proxy wallet
       2 SAFE       ecrecover == signer, and maker == the signer's Polymarket Safe
                    (both CREATE2-derived from Polymarket's factories on Polygon, as PolyProxyLib / PolySafeLib:
                    the same constants as the local CLOB, localworld/clob_orders.py)
       3 POLY_1271  signer == maker, maker has code, maker.isValidSignature(orderHash, sig) == 0x1626ba7e
       empty signature: only if an operator pre-approved the order hash (preapproveOrder)

     Fees (the real Fees.sol / Trading.sol): the operator passes each order's fee amount; all fees are in
     collateral (pUSD): a BUY pays its fee on top (pulled from its maker with its allowance), a SELL has it
     deducted from its collateral proceeds; each fee <= cashValue x maxFeeRateBps / 10000, cashValue = the
     order's collateral side of this fill. Live charges only takers `C x rate x p(1-p)`; the CLOB computes it.

     Scope: only complementary matches (taker and makers on opposite sides of the SAME tokenId). MINT/MERGE
     matches are not implemented; `conditionId` is accepted for ABI compatibility and ignored. Per-user
     pauses (pauseUser) are not implemented.
"""

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, to: address, amount: uint256) -> bool: nonpayable

interface IERC1155:
    def safeTransferFrom(sender: address, to: address, id: uint256, amount: uint256, data: Bytes[32]): nonpayable

MAX_MAKERS: constant(uint256) = 16
SIG_MAX: constant(uint256) = 512   # EOA sigs are 65 bytes; POLY_1271 317; session-key wrapped 480

BUY: constant(uint8) = 0
SELL: constant(uint8) = 1
EOA: constant(uint8) = 0
POLY_PROXY: constant(uint8) = 1
POLY_GNOSIS_SAFE: constant(uint8) = 2
POLY_1271: constant(uint8) = 3

ERC1271_MAGIC: constant(bytes4) = 0x1626ba7e
# Polymarket's proxy-wallet and Safe factories on Polygon and their wallets' init-code hashes (CREATE2).
PROXY_FACTORY: constant(address) = 0xaB45c5A4B0c941a2F231C04C3f49182e1A254052
PROXY_INIT_CODE_HASH: constant(bytes32) = 0xd21df8dc65880a8606f09fe0ce3df9b8869287ab0b058be05aa9e8af6330a00b
SAFE_FACTORY: constant(address) = 0xaacFeEa03eb1561C4e67d661e40682Bd20E3541b
SAFE_INIT_CODE_HASH: constant(bytes32) = 0x2bce2127ff07fb632d16c8347c4ebf501f4841168bed00d9e6ef715ddb6fcecf
BPS: constant(uint256) = 10_000
MAX_FEE_RATE_BPS_CAP: constant(uint256) = 10_000

ORDER_TYPEHASH: constant(bytes32) = keccak256("Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)")
DOMAIN_TYPEHASH: constant(bytes32) = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
NAME_HASH: constant(bytes32) = keccak256("Polymarket CTF Exchange")
VERSION_HASH: constant(bytes32) = keccak256("2")

struct Order:
    salt: uint256
    maker: address
    signer: address
    tokenId: uint256
    makerAmount: uint256
    takerAmount: uint256
    side: uint8
    signatureType: uint8
    timestamp: uint256
    metadata: bytes32
    builder: bytes32
    signature: Bytes[SIG_MAX]

struct OrderStatus:
    filled: bool
    remaining: uint248

# ---- events: exact V2 signatures ----
event OrderFilled:
    orderHash: indexed(bytes32)
    maker: indexed(address)
    taker: indexed(address)
    side: uint8
    tokenId: uint256
    makerAmountFilled: uint256
    takerAmountFilled: uint256
    fee: uint256
    builder: bytes32
    metadata: bytes32

event OrdersMatched:
    takerOrderHash: indexed(bytes32)
    takerOrderMaker: indexed(address)
    side: uint8
    tokenId: uint256
    makerAmountFilled: uint256
    takerAmountFilled: uint256

event FeeCharged:
    receiver: indexed(address)
    amount: uint256

event NewAdmin:
    newAdminAddress: indexed(address)
    admin: indexed(address)

event NewOperator:
    newOperatorAddress: indexed(address)
    admin: indexed(address)

event RemovedOperator:
    removedOperator: indexed(address)
    admin: indexed(address)

event FeeReceiverUpdated:
    feeReceiver: indexed(address)

event MaxFeeRateUpdated:
    maxFeeRate: uint256

event TradingPaused:
    pauser: indexed(address)

event TradingUnpaused:
    pauser: indexed(address)

event OrderPreapproved:
    orderHash: indexed(bytes32)

event OrderPreapprovalInvalidated:
    orderHash: indexed(bytes32)

COLLATERAL: immutable(address)
CTF: immutable(address)

initialized: public(bool)
isAdmin: public(HashMap[address, bool])
isOperator: public(HashMap[address, bool])
getFeeReceiver: public(address)
getMaxFeeRate: public(uint256)
paused: public(bool)
orderStatus: public(HashMap[bytes32, OrderStatus])
preapproved: HashMap[bytes32, bool]


@deploy
def __init__(collateral: address, ctf: address):
    # Immutables only: this code is planted at the real exchange address where the
    # constructor never runs.
    COLLATERAL = collateral
    CTF = ctf


# ------------------------------------------------------------------ admin
@external
def initialize(admin: address):
    # One-shot: storage is empty after planting; the fork setup script calls this once.
    assert not self.initialized, "already initialized"
    assert admin != empty(address), "zero admin"
    self.initialized = True
    self.isAdmin[admin] = True
    self.getFeeReceiver = admin
    self.getMaxFeeRate = 500  # the real contract's default (5%); the fork raises it (plant.py)
    log NewAdmin(newAdminAddress=admin, admin=msg.sender)


@internal
@view
def _only_admin():
    assert self.isAdmin[msg.sender], "NotAdmin"


@external
def addAdmin(_admin: address):
    self._only_admin()
    self.isAdmin[_admin] = True
    log NewAdmin(newAdminAddress=_admin, admin=msg.sender)


@external
def addOperator(_operator: address):
    self._only_admin()
    self.isOperator[_operator] = True
    log NewOperator(newOperatorAddress=_operator, admin=msg.sender)


@external
def removeOperator(_operator: address):
    self._only_admin()
    self.isOperator[_operator] = False
    log RemovedOperator(removedOperator=_operator, admin=msg.sender)


@external
def setFeeReceiver(receiver: address):
    self._only_admin()
    self.getFeeReceiver = receiver
    log FeeReceiverUpdated(feeReceiver=receiver)


@external
def setMaxFeeRate(rate: uint256):
    self._only_admin()
    assert rate < MAX_FEE_RATE_BPS_CAP, "MaxFeeRateExceedsCeiling"
    self.getMaxFeeRate = rate
    log MaxFeeRateUpdated(maxFeeRate=rate)


@external
def pauseTrading():
    self._only_admin()
    self.paused = True
    log TradingPaused(pauser=msg.sender)


@external
def unpauseTrading():
    self._only_admin()
    self.paused = False
    log TradingUnpaused(pauser=msg.sender)


# ------------------------------------------------------------------ views
@external
@view
def getCollateral() -> address:
    return COLLATERAL


@external
@view
def getCtf() -> address:
    return CTF


@internal
@pure
def _create2(factory: address, salt: bytes32, init_code_hash: bytes32) -> address:
    return convert(convert(keccak256(concat(b"\xff", convert(factory, bytes20), salt, init_code_hash)), uint256) & convert(max_value(uint160), uint256), address)


@internal
@pure
def _proxy_wallet(signer: address) -> address:
    return self._create2(PROXY_FACTORY, keccak256(slice(abi_encode(signer), 12, 20)), PROXY_INIT_CODE_HASH)


@internal
@pure
def _safe_wallet(signer: address) -> address:
    return self._create2(SAFE_FACTORY, keccak256(abi_encode(signer)), SAFE_INIT_CODE_HASH)


@external
@pure
def getProxyWalletAddress(signer: address) -> address:
    return self._proxy_wallet(signer)


@external
@pure
def getSafeWalletAddress(signer: address) -> address:
    return self._safe_wallet(signer)


@external
@view
def getOrderStatus(orderHash: bytes32) -> OrderStatus:
    return self.orderStatus[orderHash]


@internal
@view
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@external
@view
def domainSeparator() -> bytes32:
    return self._domain_separator()


@internal
@view
def _hash_order(o: Order) -> bytes32:
    # EIP-712 digest of the V2 Order struct (signature excluded), as the SDKs compute it.
    struct_hash: bytes32 = keccak256(abi_encode(
        ORDER_TYPEHASH, o.salt, o.maker, o.signer, o.tokenId, o.makerAmount, o.takerAmount,
        o.side, o.signatureType, o.timestamp, o.metadata, o.builder))
    return keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))


@external
@view
def hashOrder(order: Order) -> bytes32:
    return self._hash_order(order)


# ------------------------------------------------------------------ signatures
@internal
@pure
def _ecrecover(digest: bytes32, sig: Bytes[SIG_MAX]) -> address:
    if len(sig) != 65:
        return empty(address)
    r: uint256 = convert(extract32(sig, 0), uint256)
    s: uint256 = convert(extract32(sig, 32), uint256)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    if v < 27:
        v += 27
    return ecrecover(digest, v, r, s)


@internal
@view
def _is_valid_1271(wallet: address, digest: bytes32, sig: Bytes[SIG_MAX]) -> bool:
    if wallet.codesize == 0:
        return False
    ok: bool = False
    resp: Bytes[32] = b""
    ok, resp = raw_call(
        wallet,
        abi_encode(digest, sig, method_id=method_id("isValidSignature(bytes32,bytes)")),
        max_outsize=32, is_static_call=True, revert_on_failure=False)
    return ok and len(resp) == 32 and convert(slice(resp, 0, 4), bytes4) == ERC1271_MAGIC


@internal
@view
def _is_valid_signature(o: Order, digest: bytes32) -> bool:
    t: uint8 = o.signatureType
    if t == POLY_1271:
        return o.signer == o.maker and self._is_valid_1271(o.maker, digest, o.signature)
    recovered: address = self._ecrecover(digest, o.signature)
    if recovered == empty(address) or recovered != o.signer:
        return False
    if t == EOA:
        return o.signer == o.maker
    if t == POLY_PROXY:
        return self._proxy_wallet(o.signer) == o.maker
    if t == POLY_GNOSIS_SAFE:
        return self._safe_wallet(o.signer) == o.maker
    return False


@internal
@view
def _validate_signature(digest: bytes32, o: Order):
    if len(o.signature) == 0:
        assert self.preapproved[digest], "InvalidSignature"
    else:
        assert self._is_valid_signature(o, digest), "InvalidSignature"


@external
@view
def validateOrderSignature(orderHash: bytes32, order: Order):
    self._validate_signature(orderHash, order)


@external
@view
def validateOrder(order: Order):
    h: bytes32 = self._hash_order(order)
    assert not self.orderStatus[h].filled, "OrderAlreadyFilled"
    self._validate_signature(h, order)


@external
def preapproveOrder(order: Order):
    assert self.isOperator[msg.sender], "NotOperator"
    h: bytes32 = self._hash_order(order)
    assert len(order.signature) > 0 and self._is_valid_signature(order, h), "InvalidSignature"
    self.preapproved[h] = True
    log OrderPreapproved(orderHash=h)


@external
def invalidatePreapprovedOrder(orderHash: bytes32):
    assert self.isOperator[msg.sender], "NotOperator"
    self.preapproved[orderHash] = False
    log OrderPreapprovalInvalidated(orderHash=orderHash)


# ------------------------------------------------------------------ fees
@internal
@view
def _validate_fee(fee: uint256, cash_value: uint256):
    if fee == 0:
        return
    rate: uint256 = self.getMaxFeeRate
    if rate == 0:
        return  # the real contract: no limit when the max rate is 0
    assert fee <= cash_value * rate // BPS, "FeeExceedsMaxRate"


@external
@view
def validateFee(fee: uint256, cashValue: uint256):
    self._validate_fee(fee, cashValue)


# ------------------------------------------------------------------ ERC-1155 receiver
# The exchange takes custody of outcome tokens mid-settlement, so it must accept them (the real CTF calls these).
@external
def onERC1155Received(operator: address, sender: address, id: uint256, amount: uint256, data: Bytes[1024]) -> bytes4:
    return 0xf23a6e61


@external
def onERC1155BatchReceived(operator: address, sender: address, ids: DynArray[uint256, 128], amounts: DynArray[uint256, 128], data: Bytes[1024]) -> bytes4:
    return 0xbc197c81


@external
@pure
def supportsInterface(interface_id: bytes4) -> bool:
    return interface_id in [0x01ffc9a7, 0x4e2312e0]


# ------------------------------------------------------------------ settlement
@internal
def _check_order(o: Order, making: uint256, fee: uint256) -> (bytes32, uint256):
    """Hash, signature, fill bookkeeping and fee bound of one order; returns (hash, taking)."""
    assert o.side <= SELL, "bad side"
    assert o.makerAmount > 0, "ZeroMakerAmount"
    h: bytes32 = self._hash_order(o)
    self._validate_signature(h, o)
    # Same bookkeeping as the real exchange: `remaining` in maker-asset units, `filled`
    # once nothing remains, so an order can never be filled past its makerAmount.
    st: OrderStatus = self.orderStatus[h]
    assert not st.filled, "OrderAlreadyFilled"
    remaining: uint256 = convert(st.remaining, uint256)
    if remaining == 0:
        remaining = o.makerAmount
    assert making <= remaining, "MakingGtRemaining"
    remaining -= making
    self.orderStatus[h] = OrderStatus(filled=remaining == 0, remaining=convert(remaining, uint248))
    taking: uint256 = making * o.takerAmount // o.makerAmount
    if o.side == BUY:
        self._validate_fee(fee, making)
    else:
        self._validate_fee(fee, taking)
    return h, taking


@internal
def _pull(side: uint8, token_id: uint256, sender: address, amount: uint256):
    """Move `amount` of the maker asset of an order on `side` from `sender` into the exchange."""
    if amount == 0:
        return
    if side == BUY:
        assert extcall IERC20(COLLATERAL).transferFrom(sender, self, amount, default_return_value=True), "transfer failed"
    else:
        extcall IERC1155(CTF).safeTransferFrom(sender, self, token_id, amount, b"")


@internal
def _send(collateral: bool, token_id: uint256, to: address, amount: uint256):
    if amount == 0:
        return
    if collateral:
        assert extcall IERC20(COLLATERAL).transfer(to, amount, default_return_value=True), "transfer failed"
    else:
        extcall IERC1155(CTF).safeTransferFrom(self, to, token_id, amount, b"")


@internal
def _settle(side: uint8, token_id: uint256, who: address, proceeds: uint256, fee: uint256):
    """Pay `who` its proceeds and charge its fee, always in collateral: a SELL (proceeds in collateral) has
    the fee deducted; a BUY (proceeds in tokens) pays the fee from its own collateral (allowance)."""
    receiver: address = self.getFeeReceiver
    if side == SELL:
        assert fee <= proceeds, "FeeExceedsProceeds"
        self._send(True, token_id, who, proceeds - fee)
        if fee > 0:
            self._send(True, token_id, receiver, fee)
    else:
        self._send(False, token_id, who, proceeds)
        if fee > 0:
            assert extcall IERC20(COLLATERAL).transferFrom(who, receiver, fee, default_return_value=True), "transfer failed"
    if fee > 0:
        log FeeCharged(receiver=receiver, amount=fee)


@external
def matchOrders(
    conditionId: bytes32,
    takerOrder: Order,
    makerOrders: DynArray[Order, MAX_MAKERS],
    takerFillAmount: uint256,
    makerFillAmounts: DynArray[uint256, MAX_MAKERS],
    takerFeeAmount: uint256,
    makerFeeAmounts: DynArray[uint256, MAX_MAKERS],
):
    assert self.isOperator[msg.sender], "NotOperator"
    assert not self.paused, "Paused"
    n: uint256 = len(makerOrders)
    assert n > 0, "NoMakerOrders"
    assert len(makerFillAmounts) == n and len(makerFeeAmounts) == n, "MismatchedArrayLengths"

    token_id: uint256 = takerOrder.tokenId
    taker_buys: bool = takerOrder.side == BUY
    taker_hash: bytes32 = empty(bytes32)
    taker_min: uint256 = 0
    taker_hash, taker_min = self._check_order(takerOrder, takerFillAmount, takerFeeAmount)

    # 1. taker's maker asset into custody (collateral if the taker buys, tokens if it sells)
    self._pull(takerOrder.side, token_id, takerOrder.maker, takerFillAmount)

    # 2. each maker: its maker asset into custody, its proceeds (paid out of the taker's
    #    deposit) straight back out.
    maker_taking_total: uint256 = 0   # in the taker's maker asset
    maker_making_total: uint256 = 0   # in the taker's taker asset
    for i: uint256 in range(n, bound=MAX_MAKERS):
        m: Order = makerOrders[i]
        assert m.tokenId == token_id, "MismatchedTokenIds"
        assert m.side != takerOrder.side and m.side <= SELL, "unsupported match type"
        # price crossing: buyer pays at least what the seller asks
        if taker_buys:
            assert takerOrder.makerAmount * m.makerAmount >= takerOrder.takerAmount * m.takerAmount, "NotCrossing"
        else:
            assert m.makerAmount * takerOrder.makerAmount >= m.takerAmount * takerOrder.takerAmount, "NotCrossing"
        making: uint256 = makerFillAmounts[i]
        h: bytes32 = empty(bytes32)
        taking: uint256 = 0
        h, taking = self._check_order(m, making, makerFeeAmounts[i])
        maker_taking_total += taking
        assert maker_taking_total <= takerFillAmount, "ComplementaryFillExceedsTakerFill"
        maker_making_total += making
        self._pull(m.side, token_id, m.maker, making)
        self._settle(m.side, token_id, m.maker, taking, makerFeeAmounts[i])
        log OrderFilled(orderHash=h, maker=m.maker, taker=takerOrder.maker, side=m.side, tokenId=token_id,
                        makerAmountFilled=making, takerAmountFilled=taking, fee=makerFeeAmounts[i],
                        builder=m.builder, metadata=m.metadata)

    # 3. taker gets everything the makers put in (any price improvement is the taker's),
    #    which must be at least its limit price for the amount it put up.
    taker_taking: uint256 = maker_making_total
    assert taker_taking >= taker_min, "TooLittleTokensReceived"

    # 4. refund what the makers did not need of the taker's deposit (before a BUY taker's fee is pulled)
    self._send(taker_buys, token_id, takerOrder.maker, takerFillAmount - maker_taking_total)
    self._settle(takerOrder.side, token_id, takerOrder.maker, taker_taking, takerFeeAmount)

    log OrderFilled(orderHash=taker_hash, maker=takerOrder.maker, taker=self, side=takerOrder.side, tokenId=token_id,
                    makerAmountFilled=takerFillAmount, takerAmountFilled=taker_taking, fee=takerFeeAmount,
                    builder=takerOrder.builder, metadata=takerOrder.metadata)
    log OrdersMatched(takerOrderHash=taker_hash, takerOrderMaker=takerOrder.maker, side=takerOrder.side,
                      tokenId=token_id, makerAmountFilled=takerFillAmount, takerAmountFilled=taker_taking)
