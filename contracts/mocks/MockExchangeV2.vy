# pragma version ~=0.4.3
"""
@title MockExchangeV2
@notice Settlement half of Polymarket's V2 CTF exchange for the offline fork: the same
        `matchOrders` ABI (selector), the same EIP-712 order hash and the same
        OrderFilled / OrdersMatched events as the real contract, so the CLOB stand-in,
        the detector and the workers run unchanged against it.
@dev Planted at the real exchange address with anvil_setCode. `collateral` and `ctf` are
     immutables (they travel with the runtime code); admin/operators/fee receiver are
     storage and are set after planting via the one-shot initialize(admin) + addOperator.
     The EIP-712 domain separator is computed at call time from chain.id and `self`, so it
     is right at the planted address too (a cached one would name the deploy address).

     Scope: only complementary matches (taker and makers on opposite sides of the SAME
     tokenId). MINT/MERGE matches (BUY vs BUY across a condition's two tokens) are not
     implemented; `conditionId` is accepted for ABI compatibility and ignored.

     Signatures are NOT verified on chain: only operators can call matchOrders and the
     operator (our local CLOB) has already checked them off chain. This mock trusts its
     operator; the real exchange does not. Funds still move only with the parties' own
     approvals (collateral.transferFrom / ctf.safeTransferFrom), as on the real exchange.

     Fees are taken from each party's proceeds (in the asset the party receives, as V1
     does), sent to the fee receiver, and logged with FeeCharged.
"""

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, to: address, amount: uint256) -> bool: nonpayable

interface IERC1155:
    def safeTransferFrom(sender: address, to: address, id: uint256, amount: uint256, data: Bytes[32]): nonpayable

MAX_MAKERS: constant(uint256) = 16
SIG_MAX: constant(uint256) = 512   # EOA sigs are 65 bytes; POLY_1271 wrapped sigs ~320

BUY: constant(uint8) = 0
SELL: constant(uint8) = 1

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

COLLATERAL: immutable(address)
CTF: immutable(address)

initialized: public(bool)
isAdmin: public(HashMap[address, bool])
isOperator: public(HashMap[address, bool])
getFeeReceiver: public(address)
orderStatus: public(HashMap[bytes32, OrderStatus])


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
    log NewAdmin(newAdminAddress=admin, admin=msg.sender)


@external
def addAdmin(_admin: address):
    assert self.isAdmin[msg.sender], "NotAdmin"
    self.isAdmin[_admin] = True
    log NewAdmin(newAdminAddress=_admin, admin=msg.sender)


@external
def addOperator(_operator: address):
    assert self.isAdmin[msg.sender], "NotAdmin"
    self.isOperator[_operator] = True
    log NewOperator(newOperatorAddress=_operator, admin=msg.sender)


@external
def removeOperator(_operator: address):
    assert self.isAdmin[msg.sender], "NotAdmin"
    self.isOperator[_operator] = False
    log RemovedOperator(removedOperator=_operator, admin=msg.sender)


@external
def setFeeReceiver(receiver: address):
    assert self.isAdmin[msg.sender], "NotAdmin"
    self.getFeeReceiver = receiver
    log FeeReceiverUpdated(feeReceiver=receiver)


# ------------------------------------------------------------------ views
@external
@view
def getCollateral() -> address:
    return COLLATERAL


@external
@view
def getCtf() -> address:
    return CTF


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
    # EIP-712 digest of the V2 Order struct (signature excluded), as py_clob_client_v2's
    # ExchangeOrderBuilderV2.build_order_hash computes it.
    struct_hash: bytes32 = keccak256(abi_encode(
        ORDER_TYPEHASH, o.salt, o.maker, o.signer, o.tokenId, o.makerAmount, o.takerAmount,
        o.side, o.signatureType, o.timestamp, o.metadata, o.builder))
    return keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))


@external
@view
def hashOrder(order: Order) -> bytes32:
    return self._hash_order(order)


# ------------------------------------------------------------------ ERC-1155 receiver
# The exchange takes custody of outcome tokens mid-settlement, so it must accept them.
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
def _fill_status(order_hash: bytes32, maker_amount: uint256, making: uint256):
    # Same bookkeeping as the real exchange: `remaining` in maker-asset units, `filled`
    # once nothing remains, so an order can never be filled past its makerAmount.
    assert maker_amount > 0, "ZeroMakerAmount"
    st: OrderStatus = self.orderStatus[order_hash]
    assert not st.filled, "OrderAlreadyFilled"
    remaining: uint256 = convert(st.remaining, uint256)
    if remaining == 0:
        remaining = maker_amount
    assert making <= remaining, "MakingGtRemaining"
    remaining -= making
    self.orderStatus[order_hash] = OrderStatus(filled=remaining == 0, remaining=convert(remaining, uint248))


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
def _pay(collateral: bool, token_id: uint256, to: address, proceeds: uint256, fee: uint256):
    assert fee <= proceeds, "FeeExceedsProceeds"
    self._send(collateral, token_id, to, proceeds - fee)
    if fee > 0:
        receiver: address = self.getFeeReceiver
        self._send(collateral, token_id, receiver, fee)
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
    n: uint256 = len(makerOrders)
    assert n > 0, "NoMakerOrders"
    assert len(makerFillAmounts) == n and len(makerFeeAmounts) == n, "MismatchedArrayLengths"
    assert takerOrder.side <= SELL, "bad side"

    token_id: uint256 = takerOrder.tokenId
    taker_buys: bool = takerOrder.side == BUY
    taker_hash: bytes32 = self._hash_order(takerOrder)
    self._fill_status(taker_hash, takerOrder.makerAmount, takerFillAmount)

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
        h: bytes32 = self._hash_order(m)
        self._fill_status(h, m.makerAmount, making)
        taking: uint256 = making * m.takerAmount // m.makerAmount
        maker_taking_total += taking
        assert maker_taking_total <= takerFillAmount, "ComplementaryFillExceedsTakerFill"
        maker_making_total += making
        self._pull(m.side, token_id, m.maker, making)
        # a SELL maker receives collateral; a BUY maker receives tokens
        self._pay(m.side == SELL, token_id, m.maker, taking, makerFeeAmounts[i])
        log OrderFilled(orderHash=h, maker=m.maker, taker=takerOrder.maker, side=m.side, tokenId=token_id,
                        makerAmountFilled=making, takerAmountFilled=taking, fee=makerFeeAmounts[i],
                        builder=m.builder, metadata=m.metadata)

    # 3. taker gets everything the makers put in (any price improvement is the taker's),
    #    which must be at least its limit price for the amount it put up.
    taker_taking: uint256 = maker_making_total
    assert taker_taking >= takerFillAmount * takerOrder.takerAmount // takerOrder.makerAmount, "TooLittleTokensReceived"
    self._pay(not taker_buys, token_id, takerOrder.maker, taker_taking, takerFeeAmount)

    # 4. refund what the makers did not need of the taker's deposit
    self._send(taker_buys, token_id, takerOrder.maker, takerFillAmount - maker_taking_total)

    log OrderFilled(orderHash=taker_hash, maker=takerOrder.maker, taker=self, side=takerOrder.side, tokenId=token_id,
                    makerAmountFilled=takerFillAmount, takerAmountFilled=taker_taking, fee=takerFeeAmount,
                    builder=takerOrder.builder, metadata=takerOrder.metadata)
    log OrdersMatched(takerOrderHash=taker_hash, takerOrderMaker=takerOrder.maker, side=takerOrder.side,
                      tokenId=token_id, makerAmountFilled=takerFillAmount, takerAmountFilled=taker_taking)
