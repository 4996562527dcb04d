"""`chain_contracts`: the one answer to "which collateral, CTF and exchange(s) on this chain"."""
from __future__ import annotations

from types import SimpleNamespace

from copytrade_cli.polymarket.addresses import POLYGON, chain_contracts, polymarket_addresses
from copytrade_cli.settings import Settings


def test_the_planted_world_on_the_fork():
    world = SimpleNamespace(collateral="0x" + "aa" * 20, ctf="0x" + "bb" * 20, exchange="0x" + "cc" * 20)
    c = chain_contracts(POLYGON, world, Settings(COPYTRADE_HOME="/tmp/none"))
    assert (c.collateral, c.ctf, c.exchange) == (world.collateral, world.ctf, world.exchange)
    assert c.exchanges == c.spenders == (world.exchange,) and c.targets == [world.collateral, world.ctf]


def test_live_polymarket_with_collateral_and_ctf_as_configured():
    pm, s = polymarket_addresses(POLYGON), Settings(COPYTRADE_HOME="/tmp/none")
    c = chain_contracts(POLYGON, None, s)
    assert (c.collateral, c.ctf) == (s.usdc_address, s.ctf_address)
    assert c.exchange == pm.exchange_v2 and c.exchanges == pm.exchanges
    assert c.spenders == (pm.exchange_v2, pm.neg_risk_exchange_v2)
    assert chain_contracts(POLYGON).collateral == pm.usdc_e  # no settings: the package's (and SPEC's) addresses


def test_the_fork_detects_fills_on_the_neg_risk_exchange_too():
    world = SimpleNamespace(collateral="0x" + "aa" * 20, ctf="0x" + "bb" * 20, exchange="0x" + "cc" * 20,
                            neg_risk_exchange="0x" + "dd" * 20)
    c = chain_contracts(POLYGON, world, Settings(COPYTRADE_HOME="/tmp/none"))
    assert c.exchanges == (world.exchange, world.neg_risk_exchange) and c.spenders == (world.exchange,)
