# pragma version ~=0.4.3
"""
@title MockConditionalTokens
@notice ERC-1155 + the parts of Gnosis ConditionalTokens the copytrade flows touch
        (prepare, split, merge, report, redeem), for the offline fork.
@dev Planted at the real CTF address with anvil_setCode, so it needs NO constructor state:
     there is no owner, no initializer; conditions are created by prepareCondition like the
     real contract. Only top-level positions are supported (parentCollectionId must be 0),
     and getCollectionId is simplified to keccak256(abi.encode(conditionId, indexSet))
     (the real one uses an elliptic-curve point sum). getConditionId and getPositionId are
     computed exactly like the real contract, so token ids derive the same way given the
     collection id.
"""

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, to: address, amount: uint256) -> bool: nonpayable

interface IERC1155Receiver:
    def onERC1155Received(operator: address, sender: address, id: uint256, amount: uint256, data: Bytes[1024]) -> bytes4: nonpayable
    def onERC1155BatchReceived(operator: address, sender: address, ids: DynArray[uint256, 128], amounts: DynArray[uint256, 128], data: Bytes[1024]) -> bytes4: nonpayable

MAX_SLOTS: constant(uint256) = 8
MAX_BATCH: constant(uint256) = 128
ERC1155_RECEIVED: constant(bytes4) = 0xf23a6e61
ERC1155_BATCH_RECEIVED: constant(bytes4) = 0xbc197c81

# ---- ERC-1155 events (standard signatures) ----
event TransferSingle:
    operator: indexed(address)
    sender: indexed(address)
    receiver: indexed(address)
    id: uint256
    value: uint256

event TransferBatch:
    operator: indexed(address)
    sender: indexed(address)
    receiver: indexed(address)
    ids: DynArray[uint256, MAX_BATCH]
    values: DynArray[uint256, MAX_BATCH]

event ApprovalForAll:
    owner: indexed(address)
    operator: indexed(address)
    approved: bool

event URI:
    value: String[8]
    id: indexed(uint256)

# ---- ConditionalTokens events (same signatures as the Gnosis contract) ----
event ConditionPreparation:
    conditionId: indexed(bytes32)
    oracle: indexed(address)
    questionId: indexed(bytes32)
    outcomeSlotCount: uint256

event ConditionResolution:
    conditionId: indexed(bytes32)
    oracle: indexed(address)
    questionId: indexed(bytes32)
    outcomeSlotCount: uint256
    payoutNumerators: DynArray[uint256, MAX_SLOTS]

event PositionSplit:
    stakeholder: indexed(address)
    collateralToken: address
    parentCollectionId: indexed(bytes32)
    conditionId: indexed(bytes32)
    partition: DynArray[uint256, MAX_SLOTS]
    amount: uint256

event PositionsMerge:
    stakeholder: indexed(address)
    collateralToken: address
    parentCollectionId: indexed(bytes32)
    conditionId: indexed(bytes32)
    partition: DynArray[uint256, MAX_SLOTS]
    amount: uint256

event PayoutRedemption:
    redeemer: indexed(address)
    collateralToken: indexed(address)
    parentCollectionId: indexed(bytes32)
    conditionId: bytes32
    indexSets: DynArray[uint256, MAX_SLOTS]
    payout: uint256

balanceOf: public(HashMap[address, HashMap[uint256, uint256]])
isApprovedForAll: public(HashMap[address, HashMap[address, bool]])

# conditionId -> outcome slot count (0 = not prepared), as the real getOutcomeSlotCount
_slotCount: HashMap[bytes32, uint256]
# conditionId -> index -> numerator, public like the real `payoutNumerators(bytes32, uint256)`
payoutNumerators: public(HashMap[bytes32, HashMap[uint256, uint256]])
payoutDenominator: public(HashMap[bytes32, uint256])


# ------------------------------------------------------------------ ERC-165
@external
@pure
def supportsInterface(interface_id: bytes4) -> bool:
    # ERC-165, ERC-1155, ERC-1155 metadata URI
    return interface_id in [0x01ffc9a7, 0xd9b67a26, 0x0e89341c]


@external
@pure
def uri(id: uint256) -> String[8]:
    return ""


# ------------------------------------------------------------------ ERC-1155
@external
@view
def balanceOfBatch(owners: DynArray[address, MAX_BATCH], ids: DynArray[uint256, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    assert len(owners) == len(ids), "length mismatch"
    out: DynArray[uint256, MAX_BATCH] = []
    for i: uint256 in range(len(owners), bound=MAX_BATCH):
        out.append(self.balanceOf[owners[i]][ids[i]])
    return out


@external
def setApprovalForAll(operator: address, approved: bool):
    assert operator != msg.sender, "self approval"
    self.isApprovedForAll[msg.sender][operator] = approved
    log ApprovalForAll(owner=msg.sender, operator=operator, approved=approved)


@internal
def _check_single(operator: address, sender: address, to: address, id: uint256, amount: uint256, data: Bytes[1024]):
    # Standard acceptance check: contracts must opt in, EOAs always accept.
    if to.is_contract:
        ret: bytes4 = extcall IERC1155Receiver(to).onERC1155Received(operator, sender, id, amount, data)
        assert ret == ERC1155_RECEIVED, "ERC1155: rejected"


@internal
def _check_batch(operator: address, sender: address, to: address, ids: DynArray[uint256, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH], data: Bytes[1024]):
    if to.is_contract:
        ret: bytes4 = extcall IERC1155Receiver(to).onERC1155BatchReceived(operator, sender, ids, amounts, data)
        assert ret == ERC1155_BATCH_RECEIVED, "ERC1155: rejected"


@external
def safeTransferFrom(sender: address, to: address, id: uint256, amount: uint256, data: Bytes[1024]):
    assert sender == msg.sender or self.isApprovedForAll[sender][msg.sender], "ERC1155: not approved"
    assert to != empty(address), "ERC1155: to zero"
    bal: uint256 = self.balanceOf[sender][id]
    assert bal >= amount, "ERC1155: insufficient balance"
    self.balanceOf[sender][id] = bal - amount
    self.balanceOf[to][id] += amount
    log TransferSingle(operator=msg.sender, sender=sender, receiver=to, id=id, value=amount)
    self._check_single(msg.sender, sender, to, id, amount, data)


@external
def safeBatchTransferFrom(sender: address, to: address, ids: DynArray[uint256, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH], data: Bytes[1024]):
    assert sender == msg.sender or self.isApprovedForAll[sender][msg.sender], "ERC1155: not approved"
    assert to != empty(address), "ERC1155: to zero"
    assert len(ids) == len(amounts), "length mismatch"
    for i: uint256 in range(len(ids), bound=MAX_BATCH):
        bal: uint256 = self.balanceOf[sender][ids[i]]
        assert bal >= amounts[i], "ERC1155: insufficient balance"
        self.balanceOf[sender][ids[i]] = bal - amounts[i]
        self.balanceOf[to][ids[i]] += amounts[i]
    log TransferBatch(operator=msg.sender, sender=sender, receiver=to, ids=ids, values=amounts)
    self._check_batch(msg.sender, sender, to, ids, amounts, data)


# ------------------------------------------------------------------ CTF ids
@internal
@pure
def _condition_id(oracle: address, question_id: bytes32, slots: uint256) -> bytes32:
    # keccak256(abi.encodePacked(oracle, questionId, outcomeSlotCount)), as the real CTF.
    return keccak256(concat(convert(oracle, bytes20), question_id, convert(slots, bytes32)))


@internal
@pure
def _collection_id(condition_id: bytes32, index_set: uint256) -> bytes32:
    # Simplified (see module docstring): keccak256(abi.encode(conditionId, indexSet)).
    return keccak256(abi_encode(condition_id, index_set))


@internal
@pure
def _position_id(collateral: address, collection_id: bytes32) -> uint256:
    # uint256(keccak256(abi.encodePacked(collateralToken, collectionId))), as the real CTF.
    return convert(keccak256(concat(convert(collateral, bytes20), collection_id)), uint256)


@external
@pure
def getConditionId(oracle: address, questionId: bytes32, outcomeSlotCount: uint256) -> bytes32:
    return self._condition_id(oracle, questionId, outcomeSlotCount)


@external
@pure
def getCollectionId(parentCollectionId: bytes32, conditionId: bytes32, indexSet: uint256) -> bytes32:
    assert parentCollectionId == empty(bytes32), "nested positions unsupported"
    return self._collection_id(conditionId, indexSet)


@external
@pure
def getPositionId(collateralToken: address, collectionId: bytes32) -> uint256:
    return self._position_id(collateralToken, collectionId)


@external
@view
def getOutcomeSlotCount(conditionId: bytes32) -> uint256:
    return self._slotCount[conditionId]


# ------------------------------------------------------------------ lifecycle
@external
def prepareCondition(oracle: address, questionId: bytes32, outcomeSlotCount: uint256):
    assert outcomeSlotCount > 1 and outcomeSlotCount <= MAX_SLOTS, "bad outcome slot count"
    cid: bytes32 = self._condition_id(oracle, questionId, outcomeSlotCount)
    assert self._slotCount[cid] == 0, "condition already prepared"
    self._slotCount[cid] = outcomeSlotCount
    log ConditionPreparation(conditionId=cid, oracle=oracle, questionId=questionId, outcomeSlotCount=outcomeSlotCount)


@internal
@view
def _partition_union(condition_id: bytes32, partition: DynArray[uint256, MAX_SLOTS]) -> (uint256, uint256):
    """Validate a partition (non-empty, disjoint, proper index sets); return (union, fullIndexSet)."""
    slots: uint256 = self._slotCount[condition_id]
    assert slots > 0, "condition not prepared"
    assert len(partition) > 1, "partition needs 2+ sets"
    full: uint256 = (1 << slots) - 1
    union: uint256 = 0
    for index_set: uint256 in partition:
        assert index_set > 0 and index_set < full, "bad index set"
        assert union & index_set == 0, "partition not disjoint"
        union |= index_set
    return union, full


@internal
def _mint_batch(to: address, ids: DynArray[uint256, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    for i: uint256 in range(len(ids), bound=MAX_BATCH):
        self.balanceOf[to][ids[i]] += amounts[i]
    log TransferBatch(operator=msg.sender, sender=empty(address), receiver=to, ids=ids, values=amounts)
    self._check_batch(msg.sender, empty(address), to, ids, amounts, b"")


@internal
def _burn_batch(owner: address, ids: DynArray[uint256, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    for i: uint256 in range(len(ids), bound=MAX_BATCH):
        bal: uint256 = self.balanceOf[owner][ids[i]]
        assert bal >= amounts[i], "insufficient position balance"
        self.balanceOf[owner][ids[i]] = bal - amounts[i]
    log TransferBatch(operator=msg.sender, sender=owner, receiver=empty(address), ids=ids, values=amounts)


@external
def splitPosition(collateralToken: address, parentCollectionId: bytes32, conditionId: bytes32, partition: DynArray[uint256, MAX_SLOTS], amount: uint256):
    assert parentCollectionId == empty(bytes32), "nested positions unsupported"
    union: uint256 = 0
    full: uint256 = 0
    union, full = self._partition_union(conditionId, partition)
    if union == full:
        # Full partition: collateral in, one of each position out.
        assert extcall IERC20(collateralToken).transferFrom(msg.sender, self, amount, default_return_value=True), "collateral pull failed"
    else:
        # Partial partition: burn the union position, mint its parts (as the real CTF).
        pid: uint256 = self._position_id(collateralToken, self._collection_id(conditionId, union))
        self._burn_batch(msg.sender, [pid], [amount])
    ids: DynArray[uint256, MAX_BATCH] = []
    amounts: DynArray[uint256, MAX_BATCH] = []
    for index_set: uint256 in partition:
        ids.append(self._position_id(collateralToken, self._collection_id(conditionId, index_set)))
        amounts.append(amount)
    self._mint_batch(msg.sender, ids, amounts)
    log PositionSplit(stakeholder=msg.sender, collateralToken=collateralToken, parentCollectionId=parentCollectionId, conditionId=conditionId, partition=partition, amount=amount)


@external
def mergePositions(collateralToken: address, parentCollectionId: bytes32, conditionId: bytes32, partition: DynArray[uint256, MAX_SLOTS], amount: uint256):
    assert parentCollectionId == empty(bytes32), "nested positions unsupported"
    union: uint256 = 0
    full: uint256 = 0
    union, full = self._partition_union(conditionId, partition)
    ids: DynArray[uint256, MAX_BATCH] = []
    amounts: DynArray[uint256, MAX_BATCH] = []
    for index_set: uint256 in partition:
        ids.append(self._position_id(collateralToken, self._collection_id(conditionId, index_set)))
        amounts.append(amount)
    self._burn_batch(msg.sender, ids, amounts)
    if union == full:
        assert extcall IERC20(collateralToken).transfer(msg.sender, amount, default_return_value=True), "collateral return failed"
    else:
        pid: uint256 = self._position_id(collateralToken, self._collection_id(conditionId, union))
        self._mint_batch(msg.sender, [pid], [amount])
    log PositionsMerge(stakeholder=msg.sender, collateralToken=collateralToken, parentCollectionId=parentCollectionId, conditionId=conditionId, partition=partition, amount=amount)


@external
def reportPayouts(questionId: bytes32, payouts: DynArray[uint256, MAX_SLOTS]):
    # As the real CTF: the oracle is msg.sender, so only the oracle named in the condition
    # id can resolve it.
    slots: uint256 = len(payouts)
    assert slots > 1, "need 2+ outcomes"
    cid: bytes32 = self._condition_id(msg.sender, questionId, slots)
    assert self._slotCount[cid] == slots, "condition not prepared or wrong slot count"
    assert self.payoutDenominator[cid] == 0, "payout denominator already set"
    den: uint256 = 0
    for i: uint256 in range(slots, bound=MAX_SLOTS):
        assert self.payoutNumerators[cid][i] == 0, "payout numerator already set"
        self.payoutNumerators[cid][i] = payouts[i]
        den += payouts[i]
    assert den > 0, "payout is all zeroes"
    self.payoutDenominator[cid] = den
    log ConditionResolution(conditionId=cid, oracle=msg.sender, questionId=questionId, outcomeSlotCount=slots, payoutNumerators=payouts)


@external
def redeemPositions(collateralToken: address, parentCollectionId: bytes32, conditionId: bytes32, indexSets: DynArray[uint256, MAX_SLOTS]):
    assert parentCollectionId == empty(bytes32), "nested positions unsupported"
    den: uint256 = self.payoutDenominator[conditionId]
    assert den > 0, "result for condition not received yet"
    slots: uint256 = self._slotCount[conditionId]
    full: uint256 = (1 << slots) - 1
    total: uint256 = 0
    for index_set: uint256 in indexSets:
        assert index_set > 0 and index_set < full, "bad index set"
        pid: uint256 = self._position_id(collateralToken, self._collection_id(conditionId, index_set))
        numerator: uint256 = 0
        for j: uint256 in range(slots, bound=MAX_SLOTS):
            if index_set & (1 << j) != 0:
                numerator += self.payoutNumerators[conditionId][j]
        stake: uint256 = self.balanceOf[msg.sender][pid]
        if stake > 0:
            total += stake * numerator // den
            self.balanceOf[msg.sender][pid] = 0
            log TransferSingle(operator=msg.sender, sender=msg.sender, receiver=empty(address), id=pid, value=stake)
    if total > 0:
        assert extcall IERC20(collateralToken).transfer(msg.sender, total, default_return_value=True), "payout failed"
    log PayoutRedemption(redeemer=msg.sender, collateralToken=collateralToken, parentCollectionId=parentCollectionId, conditionId=conditionId, indexSets=indexSets, payout=total)
