"""Make leaders trade on the planted exchange (runbook T4: impersonate-mainnet-trade / batch-trade).

A leader trade is what Polymarket's operator would put on chain: the leader's signed V2 order matched
against the market maker's opposite order in one `matchOrders`, sent by an exchange operator. The
transaction is held in the pool for `pending_ms` before it is mined, so mempool watchers can see it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Sequence

from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.errors import FundsError, UsageError
from copytrade_cli.localworld.exchange import MAX_MAKERS, ExchangeClient, SettlementError
from copytrade_cli.localworld.world import DEV_KEYS, MARKET_MAKER, TRADE_OPERATOR, World, dev_key_for
from copytrade_cli.polymarket.fills import LeaderFill, decode_order_filled_v2
from copytrade_cli.polymarket.orders import build_signed_order_v2, side_str

MICRO = 10**6
_CENT = Decimal("0.01")

# One client (one nonce lane) per (node, operator) in this process, so repeated triggers never race.
_clients: dict[tuple[str, str, str], ExchangeClient] = {}


@dataclass
class TradeResult:
    """What a trigger put on chain: transaction(s), block, and each leader fill decoded from the logs."""

    tx_hash: str
    block_number: int
    fills: list[LeaderFill] = field(default_factory=list)
    tx_hashes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The canonical fill keys, in log order."""
        return [f.key for f in self.fills]


@dataclass(frozen=True)
class _Leg:
    leader: str
    key: str
    shares_micro: int
    usd_micro: int


def _client(w3: Any, world: World, operator_key: str) -> ExchangeClient:
    from eth_account import Account

    node = getattr(w3.provider, "endpoint_uri", None) or str(id(w3.provider))
    k = (str(node), world.exchange, Account.from_key(operator_key).address)
    c = _clients.get(k)
    if c is None or c.w3 is not w3:
        c = _clients[k] = ExchangeClient(w3, world, operator_key)
    else:
        # NOTE: triggers are rare and the node may have been reverted or restarted since the last one
        # (snapshots in tests, `fork down/up`): a stale local nonce would park the tx in the queue forever.
        c.lane.resync()
    return c


def _price(price: float | str | Decimal, tick: str) -> Decimal:
    p = Decimal(str(price))
    t = Decimal(tick)
    if not (t <= p <= 1 - t) or p % t != 0:
        raise UsageError(f"price {price} is not on the {tick} tick grid inside ({tick}, 1-{tick})")
    return p


def _shares_for(usd: float | Decimal, price: Decimal) -> int:
    """Shares (micro) bought with `usd` at `price`, floored to 0.01 share like the CLOB client."""
    shares = (Decimal(str(usd)) / price).quantize(_CENT, rounding=ROUND_DOWN)
    if shares <= 0:
        raise UsageError(f"${usd} at {price} buys no shares; trade a larger amount")
    return int(shares * MICRO)


def _amounts(side: str, shares_micro: int, usd_micro: int) -> tuple[int, int]:
    """(makerAmount, takerAmount) for an order on `side`."""
    return (usd_micro, shares_micro) if side == "BUY" else (shares_micro, usd_micro)


def _signed(key: str, world: World, token_id: str, side: str, shares_micro: int, usd_micro: int) -> dict:
    making, taking = _amounts(side, shares_micro, usd_micro)
    return build_signed_order_v2(key, token_id=token_id, side=side, maker_amount=making, taker_amount=taking,
                                 chain_id=world.chain_id, exchange=world.exchange)


def _key_of(leader: str) -> str:
    key = dev_key_for(leader)
    if key is None:
        raise UsageError(f"leader {leader} is not a local dev account, so its orders cannot be signed here; "
                         "use one of anvil's dev accounts (e.g. the seed leader 0x7099...79C8)")
    return key


def _send_pending(w3: Any, cheats: Cheats, client: ExchangeClient, txs: Sequence[dict], pending_ms: int) -> list[str]:
    """Send `txs`, keep them pending ~`pending_ms`, then have them mined in one block; return their hashes."""
    with cheats.mining_lock:
        automine = cheats.automine()
        interval = cheats.interval_mining() if not automine else None
        if automine:
            cheats.automine(False)
        try:
            hashes = [client.send(tx) for tx in txs]
            time.sleep(max(0, pending_ms) / 1000)
            if automine or not interval:
                cheats.mine()  # manual mode (or we switched automine off): mine them now, in one block
        finally:
            if automine:
                cheats.automine(True)
                # NOTE: a transaction another process sent between our evm_mine and re-enabling automine
                # would sit in the pool until the next one arrives; mine it now.
                if cheats.pending_count():
                    cheats.mine()
    return hashes


def _result(w3: Any, world: World, hashes: Sequence[str], timeout: float, leaders: Sequence[str]) -> TradeResult:
    fills: list[LeaderFill] = []
    block = 0
    for h in hashes:
        receipt = wait_receipt(w3, h, timeout=timeout, check=False)
        if receipt["status"] != 1:
            raise SettlementError(f"leader trade {h} reverted on chain")
        block = int(receipt["blockNumber"])
        by_token = world.token_index()
        for lg in receipt["logs"]:
            if lg["address"].lower() != world.exchange.lower():
                continue
            f = decode_order_filled_v2(lg, leaders)
            if f is not None:
                m = by_token.get(f.token_id)
                if m is not None:
                    f = _with_condition(f, m[0].condition_id)
                fills.append(f)
    return TradeResult(tx_hash=hashes[0], block_number=block, fills=fills, tx_hashes=list(hashes))


def _with_condition(f: LeaderFill, condition_id: str) -> LeaderFill:
    from dataclasses import replace

    return replace(f, condition_id=condition_id)


def leader_trade(
    w3: Any,
    world: World,
    *,
    leader: str | None = None,
    market_index: int = 0,
    outcome: str | int = "Yes",
    side: str = "BUY",
    usd: float = 10.0,
    price: float | str = "0.5",
    pending_ms: int = 300,
    operator_key: str | None = None,
    market_maker_key: str | None = None,
    timeout: float = 60,
) -> TradeResult:
    """One leader fill: the leader's order (taker) against the market maker's, in one `matchOrders`.

    BUY spends ~`usd` at `price` (shares floored to 0.01); SELL sells the shares that `usd` buys at
    `price`. The transaction stays pending for `pending_ms` before it is mined.
    """
    side = side_str(side)
    leader = leader or world.leader
    market = world.market(market_index)
    token_id = market.token_id(outcome)
    p = _price(price, market.tick_size)
    shares = _shares_for(usd, p)
    usd_micro = int(Decimal(shares) * p)
    leader_order = _signed(_key_of(leader), world, token_id, side, shares, usd_micro)
    mm_side = "SELL" if side == "BUY" else "BUY"
    mm_order = _signed(market_maker_key or DEV_KEYS[MARKET_MAKER], world, token_id, mm_side, shares, usd_micro)
    client = _client(w3, world, operator_key or DEV_KEYS[TRADE_OPERATOR])
    taker_fill = usd_micro if side == "BUY" else shares
    maker_fill = shares if side == "BUY" else usd_micro
    tx = client.build_tx(market.condition_id, leader_order, [mm_order], taker_fill, [maker_fill])
    _precheck(client, tx, leader)
    hashes = _send_pending(w3, Cheats(w3), client, [tx], pending_ms)
    return _result(w3, world, hashes, timeout, [leader])


def leader_batch(
    w3: Any,
    world: World,
    *,
    count: int = 3,
    leaders: Sequence[str] | None = None,
    market_index: int = 0,
    market_indexes: Sequence[int] | None = None,
    outcome: str | int = "Yes",
    side: str = "BUY",
    usd: float = 10.0,
    price: float | str = "0.5",
    pending_ms: int = 300,
    operator_key: str | None = None,
    market_maker_key: str | None = None,
    timeout: float = 60,
) -> TradeResult:
    """`count` leader fills in ONE transaction and ONE block (the seed's batch trade).

    Each leader order is a MAKER order in a single `matchOrders` whose taker is the market maker's
    opposite order. Leaders rotate through `leaders`; fill i is 0.01*i shares larger than fill 0, so
    every fill has its own key even when one leader fills several times. With several
    `market_indexes` (or more than 16 fills) it is one `matchOrders` per market (per 16 fills), all
    mined in the same block.
    """
    if count < 1:
        raise UsageError("a batch needs at least one fill")
    side = side_str(side)
    leaders = list(leaders or world.leaders)
    markets = [world.market(i) for i in (market_indexes or [market_index])]
    client = _client(w3, world, operator_key or DEV_KEYS[TRADE_OPERATOR])
    mm_key = market_maker_key or DEV_KEYS[MARKET_MAKER]
    mm_side = "SELL" if side == "BUY" else "BUY"

    per_market: dict[int, list[_Leg]] = {}
    for i in range(count):
        m_idx = i % len(markets)
        p = _price(price, markets[m_idx].tick_size)
        shares = _shares_for(usd, p) + i * 10_000
        leader = leaders[i % len(leaders)]
        per_market.setdefault(m_idx, []).append(_Leg(leader, _key_of(leader), shares, int(Decimal(shares) * p)))

    txs = []
    for m_idx, legs in per_market.items():
        market = markets[m_idx]
        token_id = market.token_id(outcome)
        for start in range(0, len(legs), MAX_MAKERS):
            chunk = legs[start:start + MAX_MAKERS]
            makers = [_signed(lg.key, world, token_id, side, lg.shares_micro, lg.usd_micro) for lg in chunk]
            total_shares = sum(lg.shares_micro for lg in chunk)
            total_usd = sum(lg.usd_micro for lg in chunk)
            taker = _signed(mm_key, world, token_id, mm_side, total_shares, total_usd)
            taker_fill = total_shares if side == "BUY" else total_usd
            maker_fills = [lg.usd_micro if side == "BUY" else lg.shares_micro for lg in chunk]
            txs.append(client.build_tx(market.condition_id, taker, makers, taker_fill, maker_fills))
    for tx in txs:
        _precheck(client, tx, ", ".join(dict.fromkeys(leaders)))
    hashes = _send_pending(w3, Cheats(w3), client, txs, pending_ms)
    return _result(w3, world, hashes, timeout, leaders)


def _precheck(client: ExchangeClient, tx: dict, who: str) -> None:
    """Simulate before sending, so a missing balance/approval is a clear error rather than a reverted tx."""
    try:
        client.simulate(tx)
    except SettlementError as exc:
        text = str(exc)
        low = text.lower()  # the strict pUSD reverts with custom errors (InsufficientAllowance, InsufficientBalance)
        if "insufficient" in low or "allowance" in low or "not approved" in low:
            raise FundsError(f"{text}; the trade's parties ({who} and the market maker) need collateral, "
                             "outcome tokens and approvals: re-run the fork's plant step") from None
        raise
