"""The local world's record, where `localworld` code has always imported it from; it lives in
`polymarket/world.py` (beside the live chains' addresses) so that `chain/` can read it without importing
`localworld/`."""
from copytrade_cli.polymarket.world import (
    DEPLOYER, DEV_ADDRESSES, DEV_KEYS, EXCHANGE_OPERATOR, LEADER, MARKET_MAKER, SEED_LEADER, TRADE_OPERATOR, Address,
    Market, World, dev_key_for,
)

__all__ = ["DEPLOYER", "DEV_ADDRESSES", "DEV_KEYS", "EXCHANGE_OPERATOR", "LEADER", "MARKET_MAKER", "SEED_LEADER",
           "TRADE_OPERATOR", "Address", "Market", "World", "dev_key_for"]
