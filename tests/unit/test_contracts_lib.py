"""copytrade_cli.chain.contracts without a chain: artifacts, cache, address helpers."""
from __future__ import annotations

import json
import time

from copytrade_cli.chain import contracts as C


def test_every_contract_compiles_and_caches(tmp_path):
    arts = C.compile_all(build_dir=tmp_path)
    assert set(arts) == set(C.SOURCES)
    for name, art in arts.items():
        assert art.bytecode.startswith("0x") and len(art.runtime_bytecode) > 2
        assert len(bytes.fromhex(art.runtime_bytecode[2:])) < 24_576, name  # EIP-170
        cached = json.loads(next(tmp_path.glob(f"{name}.*.json")).read_text())
        assert cached["abi"] == art.abi
    C._memo.clear()
    t = time.perf_counter()
    again = C.compile_all(build_dir=tmp_path)
    assert time.perf_counter() - t < 0.05
    assert again == arts


def test_source_key_is_stable_and_per_contract():
    assert C._source_key("Executor") == C._source_key("Executor")
    assert C._source_key("Executor") != C._source_key("Proxy")


def test_create_address_matches_known_anvil_deploy():
    # anvil account 0's first CREATE lands here (the well-known 0x5FbDB... address)
    assert C.create_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 0) == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert C.create_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 1) == "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


def test_predict_proxy_address_uses_eip1167_init_code():
    from eth_utils import keccak, to_checksum_address

    impl = "0x" + "11" * 20
    factory = "0x" + "22" * 20
    owner = "0x" + "33" * 20
    init = bytes.fromhex("602d3d8160093d39f3363d3d373d3d3d363d73" + "11" * 20 + "5af43d82803e903d91602b57fd5bf3")
    expected = to_checksum_address(keccak(b"\xff" + bytes.fromhex("22" * 20) + bytes(12) + bytes.fromhex("33" * 20) + keccak(init))[12:])
    assert C.predict_proxy_address(factory, impl, owner) == expected


def test_selectors_helper_knows_the_executor_surface():
    sels = C.load_artifact("Executor").selectors()
    assert "execute(address,address,bytes)" in sels
    assert "pullCollateral(address,address[],uint256[])" in sels


def test_encode_call_matches_web3_encode_abi():
    """The supervisor's fast calldata encoder gives byte-for-byte what web3 gives, for every Executor batch call."""
    from eth_account import Account
    from web3 import Web3

    import pytest

    from copytrade_cli.chain.contracts import contract, encode_call

    ex = contract(Web3(), "Executor", "0x" + "11" * 20)
    proxies = [Account.create().address for _ in range(7)]
    tok = Web3.to_checksum_address("0x2791bca1f2de4661ed88a30c99a7a9449aa84174")
    amounts = [0, 1, 10**6, 2**255, 3, 4, 5]
    for fn, args in [("pullCollateral", [tok, proxies, amounts]), ("pushCollateral", [tok, proxies, amounts]),
                     ("pushOutcome", [tok, 2**200 + 5, proxies, amounts]), ("pullOutcome", [tok, 7, proxies, amounts])]:
        assert encode_call("Executor", fn, *args) == ex.encode_abi(fn, args=args), fn
    with pytest.raises(ValueError):
        encode_call("Executor", "noSuchFunction")
