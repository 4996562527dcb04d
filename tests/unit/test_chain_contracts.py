"""`chain_contracts`: the one answer to "which collateral, CTF and exchange(s) on this chain"."""
from __future__ import annotations

from types import SimpleNamespace

from copytrade_cli.polymarket.addresses import POLYGON, chain_contracts, polymarket_addresses
from copytrade_cli.settings import Settings


def test_the_planted_world_on_the_fork():
    world = SimpleNamespace(collateral="0x" + "aa" * 20, exchange_collateral="0x" + "dd" * 20, ctf="0x" + "bb" * 20,
                            exchange="0x" + "cc" * 20)
    c = chain_contracts(POLYGON, world, Settings(COPYTRADE_HOME="/tmp/none"))
    # followers and workers hold what the planted exchange settles in (pUSD), not the whale's USDC.e
    assert (c.collateral, c.ctf, c.exchange) == (world.exchange_collateral, world.ctf, world.exchange)
    assert c.exchanges == c.spenders == (world.exchange,) and c.targets == [world.exchange_collateral, world.ctf]


def test_live_polymarket_with_collateral_and_ctf_as_configured():
    pm, s = polymarket_addresses(POLYGON), Settings(COPYTRADE_HOME="/tmp/none")
    c = chain_contracts(POLYGON, None, s)
    assert (c.collateral, c.ctf) == (s.pusd_address, s.ctf_address) == (pm.pusd, pm.ctf)
    assert c.exchange == pm.exchange_v2 and c.exchanges == pm.exchanges
    assert c.spenders == (pm.exchange_v2, pm.neg_risk_exchange_v2)
    assert chain_contracts(POLYGON).collateral == pm.pusd  # no settings: the package's (and LIVE-2026's) pUSD
