"""Funding the worker fleet on the fork: gas from the operator, a Smart Buffer float from the whale, and the
approvals its flows need. Used by `fork up` and by `deploy executor` on the fork; idempotent."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cheats import Cheats
from .proxies import erc20, erc1155
from .lanes import TxLane, floor_fees
from .rpc import wait_receipt

if TYPE_CHECKING:
    from ..polymarket.world import World

WORKER_GAS_WEI = 50 * 10**18  # POL per worker on the fork
WORKER_FLOAT_MICRO = 2000 * 10**6  # Smart Buffer float per worker on the fork


def fund_workers(w3: Any, lane: TxLane, world: World, workers: list, executor: str, gas_wei: int = WORKER_GAS_WEI,
                 float_micro: int = WORKER_FLOAT_MICRO) -> dict[str, int]:
    """Top up each worker (idempotent): gas from the operator and a Smart Buffer float from the whale when
    below half the target, and the four approvals its flows need: collateral + CTF to the exchange
    (trading) and to the Executor (pushes). Returns how many transactions of each kind were sent."""
    token, ctf = erc20(w3, world.collateral), erc1155(w3, world.ctf)
    sent = {"gas": 0, "float": 0, "approvals": 0}
    hashes = [lane.send({"to": wk.address, "value": gas_wei}, gas=21_000)
              for wk in workers if w3.eth.get_balance(wk.address) < gas_wei // 2]
    sent["gas"] = len(hashes)
    for h in hashes:
        wait_receipt(w3, h)
    needy = [wk for wk in workers if token.functions.balanceOf(wk.address).call() < float_micro // 2]
    if needy:
        cheats = Cheats(w3)
        cheats.set_balance(world.whale, 10**20)
        cheats.impersonate(world.whale)
        try:
            hs = [w3.eth.send_transaction({"from": world.whale, "to": world.collateral, "gas": 100_000, **floor_fees(w3),
                                           "data": token.encode_abi("transfer", args=[wk.address, float_micro])})
                  for wk in needy]
        finally:
            cheats.stop_impersonating(world.whale)
        for h in hs:
            wait_receipt(w3, "0x" + bytes(h).hex())
        sent["float"] = len(needy)
    approvals = []
    for wk in workers:
        wl = None
        for spender in (world.exchange, executor):
            if token.functions.allowance(wk.address, spender).call() < 2**255:
                wl = wl or TxLane(w3, wk, fees=lane.fees)
                approvals.append(wl.send({"to": world.collateral,
                                          "data": token.encode_abi("approve", args=[spender, 2**256 - 1])}, gas=80_000))
            if not ctf.functions.isApprovedForAll(wk.address, spender).call():
                wl = wl or TxLane(w3, wk, fees=lane.fees)
                approvals.append(wl.send({"to": world.ctf, "data": ctf.encode_abi("setApprovalForAll",
                                                                                  args=[spender, True])}, gas=80_000))
    for h in approvals:
        wait_receipt(w3, h)
    sent["approvals"] = len(approvals)
    return sent
