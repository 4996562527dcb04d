"""Type 1/2 makers: refused unless grandfathered (live: "maker address not allowed, please use the deposit wallet
flow"); a grandfathered one must still belong to its signer (the UNMODIFIED py_clob_client_v2,
`signature_type` + `funder`, against the local CLOB on a real anvil): POLY_PROXY's maker must be the signer's
Polymarket proxy wallet, POLY_GNOSIS_SAFE's its Safe (both CREATE2-derived). An attacker naming a funded
victim as maker is refused with `invalid signature`, and the victim's balances do not move on chain."""
from __future__ import annotations

import pytest
from eth_account import Account
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import MarketOrderArgsV2, OrderArgsV2, OrderType
from py_clob_client_v2.exceptions import PolyApiException

from copytrade_cli.localworld.clob_makers import ERR_MAKER_NOT_ALLOWED
from copytrade_cli.localworld.clob_orders import ERR_BALANCE, ERR_SIGNATURE, poly_proxy_wallet, poly_safe_wallet

from .test_local_clob import TRADER_KEY, _api_error, _balances, chain, server, world, yes  # noqa: F401

pytestmark = pytest.mark.timeout(120)
POLY_PROXY, POLY_GNOSIS_SAFE = 1, 2


def test_derivations_match_polymarket():
    # Safe: the address Polymarket's relayer SDK derives for this EOA (a public report of its output);
    # proxy: CREATE2 over the factory's clone creation code (factory 0xaB45…4052, implementation 0x44e9…eB4f)
    # hashes to the init-code hash used here
    assert poly_safe_wallet("0xBBc264c10F54A61607A31B53358a5A87d4B045be") == "0xEFae63145ffb73Ab047e578324bcA9BaABE5E1Ad"
    from eth_utils import keccak

    from copytrade_cli.localworld.clob_orders import POLY_PROXY_FACTORY, POLY_PROXY_INIT_CODE_HASH

    clone = ("3d3d606380380380913d393d73" + POLY_PROXY_FACTORY[2:].lower() + "5af4602a57600080fd5b602d8060366000396000f3"
             "363d3d373d3d3d363d73" + "44e999d5c2f66ef0861317f9a4805ac2e90aeb4f" + "5af43d82803e903d91602b57fd5bf352e831dd"
             + "0" * 62 + "20" + "0" * 64)
    assert "0x" + keccak(bytes.fromhex(clone)).hex() == POLY_PROXY_INIT_CODE_HASH


def _client(server, key, sig_type, funder):
    c = ClobClient(server.base_url, 137, key=key, signature_type=sig_type, funder=funder)
    c.set_api_creds(c.create_or_derive_api_key())
    return c


@pytest.mark.parametrize("sig_type", [POLY_PROXY, POLY_GNOSIS_SAFE])
def test_a_maker_the_signer_does_not_own_is_refused(server, chain, yes, sig_type):
    w3, world = chain
    victim = Account.from_key(TRADER_KEY).address  # planted with USDC, outcome tokens and approvals
    before = _balances(w3, world, victim, yes)
    attacker = _client(server, Account.create().key.hex(), sig_type, victim)
    rejected = server.clob.stats.orders_rejected
    with pytest.raises(PolyApiException) as err:
        attacker.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"),
                                              order_type=OrderType.FOK)
    assert _api_error(err) == (400, ERR_SIGNATURE)
    with pytest.raises(PolyApiException) as err:
        attacker.create_and_post_order(OrderArgsV2(token_id=yes, price=0.4, size=10, side="BUY"))
    assert _api_error(err) == (400, ERR_SIGNATURE)
    assert server.clob.stats.orders_rejected == rejected + 2
    assert _balances(w3, world, victim, yes) == before


@pytest.mark.parametrize("sig_type,derive", [(POLY_PROXY, poly_proxy_wallet), (POLY_GNOSIS_SAFE, poly_safe_wallet)])
def test_the_signers_own_proxy_or_safe_passes_the_ownership_check(server, yes, sig_type, derive):
    acct = Account.create()
    own = _client(server, acct.key.hex(), sig_type, derive(acct.address))
    with pytest.raises(PolyApiException) as err:  # live: proxies and Safes of new API users are refused
        own.create_and_post_order(OrderArgsV2(token_id=yes, price=0.4, size=10, side="BUY"))
    assert _api_error(err) == (400, ERR_MAKER_NOT_ALLOWED)
    server.clob.makers.grandfather([poly_proxy_wallet(acct.address), poly_safe_wallet(acct.address)])
    with pytest.raises(PolyApiException) as err:  # its wallet holds nothing on the fork: the next check refuses
        own.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"),
                                         order_type=OrderType.FOK)
    assert _api_error(err) == (400, ERR_BALANCE)
    crossed = _client(server, acct.key.hex(), sig_type,
                      (poly_safe_wallet if derive is poly_proxy_wallet else poly_proxy_wallet)(acct.address))
    with pytest.raises(PolyApiException) as err:  # the other kind of wallet of the same signer
        crossed.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"),
                                             order_type=OrderType.FOK)
    assert _api_error(err) == (400, ERR_SIGNATURE)
