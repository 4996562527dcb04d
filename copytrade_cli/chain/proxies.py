"""Follower proxies: create (one per owner, recorded), fund (on the fork, from the whale by impersonation: its
USDC.e wrapped into pUSD through the onramp), read balances and positions, withdraw (owner)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..errors import DeploymentError, FundsError, UsageError
from ..polymarket.addresses import ERC20_ABI, ERC1155_ABI
from ..state import ProxyRecord, State
from .deploy import call_tx, contract, has_code
from .lanes import TxLane, floor_fees
from .rpc import wait_receipt

USDC = 10**6
ZERO = "0x0000000000000000000000000000000000000000"


def erc20(w3, address: str):
    """A minimal ERC-20 contract object."""
    return w3.eth.contract(address=address, abi=ERC20_ABI)


def erc1155(w3, address: str):
    """A minimal ERC-1155 contract object."""
    return w3.eth.contract(address=address, abi=ERC1155_ABI)


def usd(amount_micro: int) -> str:
    """Micro-USDC as a human decimal string."""
    return f"{Decimal(amount_micro) / USDC:.6f}".rstrip("0").rstrip(".") or "0"


def factory_of(w3, state: State, network: str, override: str | None = None) -> str:
    """The ProxyFactory in effect (PROXY_FACTORY_ADDRESS override, else the recorded one)."""
    address = override
    if not address:
        dep = state.get_deployment(network, "ProxyFactory")
        address = dep.address if dep else None
    if not address or not has_code(w3, address):
        raise DeploymentError(f"no ProxyFactory on {network}: run `copytrade deploy factory` first")
    return address


def create_proxy(w3, state: State, network: str, lane: TxLane, factory: str, owner: str) -> tuple[str, str | None]:
    """Create `owner`'s proxy on `factory` (or return the existing one); (address, tx or None)."""
    f = contract(w3, "ProxyFactory", factory)
    current = f.functions.proxyOf(owner).call()
    tx_hash = None
    if current == ZERO:
        r = call_tx(lane, w3, "ProxyFactory", factory, "createProxy", owner)
        tx_hash = "0x" + bytes(r["transactionHash"]).hex()
        current = f.functions.proxyOf(owner).call()
    if state.get_proxy(network, current) is None:
        state.record_proxy(ProxyRecord(network=network, address=current, owner=owner, factory=factory, tx=tx_hash))
    return current, tx_hash


def fund_from_whale(w3, collateral: str, whale: str, to: str, amount_micro: int) -> str:
    """On the fork: move collateral from the whale to `to` by impersonating the whale (as the seed does)."""
    from .cheats import Cheats

    token = erc20(w3, collateral)
    have = token.functions.balanceOf(whale).call()
    if have < amount_micro:
        raise FundsError(f"the whale {whale} holds only {usd(have)} USDC, {usd(amount_micro)} asked")
    cheats = Cheats(w3)
    cheats.set_balance(whale, 10**20)
    cheats.impersonate(whale)
    try:
        h = w3.eth.send_transaction({"from": whale, "to": collateral, "gas": 100_000, **floor_fees(w3),
                                     "data": token.encode_abi("transfer", args=[to, amount_micro])})
    finally:
        cheats.stop_impersonating(whale)
    wait_receipt(w3, "0x" + bytes(h).hex())
    return "0x" + bytes(h).hex()


WRAP_ABI = [{"type": "function", "name": "wrap", "stateMutability": "nonpayable", "outputs": [],
             "inputs": [{"name": "_asset", "type": "address"}, {"name": "_to", "type": "address"},
                        {"name": "_amount", "type": "uint256"}]}]


def fund_pusd_from_whale(w3, world, to: str, amount_micro: int) -> str:
    """On the fork: `amount_micro` of the world's trading collateral (pUSD) for `to`, from the whale. With the
    CollateralOnramp planted, the whale's USDC.e is wrapped 1:1 into pUSD for `to` (approve + `wrap(USDC.e, to,
    amount)`, as a depositor does live, LIVE-2026 §7); otherwise (an older world, or one settling in USDC.e) the
    token moves by plain transfer. Returns the hash of the transaction that credited `to`."""
    from .cheats import Cheats

    token = world.exchange_collateral
    if not (world.onramp and token.lower() == world.pusd.lower()):
        return fund_from_whale(w3, token, world.whale, to, amount_micro)
    usdc = erc20(w3, world.collateral)
    have = usdc.functions.balanceOf(world.whale).call()
    if have < amount_micro:
        raise FundsError(f"the whale {world.whale} holds only {usd(have)} USDC.e to wrap, {usd(amount_micro)} asked")
    ramp = w3.eth.contract(address=world.onramp, abi=WRAP_ABI)
    cheats = Cheats(w3)
    cheats.set_balance(world.whale, 10**20)
    cheats.impersonate(world.whale)
    try:
        hashes = []
        if usdc.functions.allowance(world.whale, world.onramp).call() < amount_micro:
            hashes.append(w3.eth.send_transaction({"from": world.whale, "to": world.collateral, "gas": 100_000,
                                                   **floor_fees(w3), "data": usdc.encode_abi("approve", args=[world.onramp, 2**256 - 1])}))
        hashes.append(w3.eth.send_transaction({"from": world.whale, "to": world.onramp, "gas": 200_000,
                                               **floor_fees(w3), "data": ramp.encode_abi("wrap", args=[world.collateral, to,
                                                                                     amount_micro])}))
    finally:
        cheats.stop_impersonating(world.whale)
    for h in hashes:
        r = wait_receipt(w3, "0x" + bytes(h).hex(), check=False)
        if r["status"] != 1:
            raise FundsError(f"wrapping {usd(amount_micro)} USDC.e into pUSD for {to} through the onramp "
                             f"{world.onramp} failed (tx {'0x' + bytes(h).hex()})")
    return "0x" + bytes(hashes[-1]).hex()


def proxy_balances(w3, proxy: str, collateral: str, ctf: str, token_ids: list[int]) -> dict[str, Any]:
    """Collateral (micro-USDC) and outcome-token positions (micro-shares) held by a proxy."""
    bal = erc20(w3, collateral).functions.balanceOf(proxy).call()
    positions = {}
    if token_ids:
        amounts = erc1155(w3, ctf).functions.balanceOfBatch([proxy] * len(token_ids), token_ids).call()
        positions = {str(t): a for t, a in zip(token_ids, amounts) if a}
    return {"collateral": bal, "positions": positions}


def withdraw(w3, lane: TxLane, proxy: str, token: str, amount_micro: int | None) -> str:
    """Owner withdraws collateral from their proxy (allowed at any time, also when paused)."""
    p = contract(w3, "Proxy", proxy)
    owner = p.functions.owner().call()
    if owner.lower() != lane.address.lower():
        raise UsageError(f"{lane.address} is not the owner of proxy {proxy} (owner {owner}); only the owner withdraws")
    if amount_micro is None:
        amount_micro = erc20(w3, token).functions.balanceOf(proxy).call()
    r = call_tx(lane, w3, "Proxy", proxy, "withdraw", token, amount_micro)
    return "0x" + bytes(r["transactionHash"]).hex()
