# pragma version ~=0.4.3
"""
@title PositionManagerStandIn (local world)
@notice Stands at Protocol V2's PositionManager address (0x006F54F7f9A22e0000CC2AB60031000000ae9fEF) so the SDK's
        `setup_trading_approvals()` (which reads and grants ERC-1155 approvals there, LIVE-2026 §6.4) works on the
        fork: ERC-1155 operator approvals only. No positions exist on it (balances are zero, transfers revert):
        Protocol V2 / ExchangeV3 trading is not part of the local world. Planted only where no code is.
"""

isApprovedForAll: public(HashMap[address, HashMap[address, bool]])

event ApprovalForAll:
    owner: indexed(address)
    operator: indexed(address)
    approved: bool


@external
def setApprovalForAll(operator: address, approved: bool):
    """@notice ERC-1155 operator approval of msg.sender's (non-existent) positions."""
    assert operator != msg.sender, "PositionManagerStandIn: self approval"
    self.isApprovedForAll[msg.sender][operator] = approved
    log ApprovalForAll(owner=msg.sender, operator=operator, approved=approved)


@external
@view
def balanceOf(owner: address, id: uint256) -> uint256:
    """@notice Always 0: no Protocol V2 positions on the local world."""
    return 0


@external
@view
def balanceOfBatch(owners: DynArray[address, 256], ids: DynArray[uint256, 256]) -> DynArray[uint256, 256]:
    """@notice Zeros (no Protocol V2 positions on the local world)."""
    assert len(owners) == len(ids), "PositionManagerStandIn: length mismatch"
    out: DynArray[uint256, 256] = []
    for _i: uint256 in range(len(ids), bound=256):
        out.append(0)
    return out


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """@notice ERC-165 and ERC-1155."""
    return interface_id in [0x01ffc9a7, 0xd9b67a26]
