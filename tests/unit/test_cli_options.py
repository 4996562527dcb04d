"""The shared CLI options: enums spelled as the library spells them, checked while Typer parses, with the
library's own one-line errors; and a cold `copytrade --help` that imports nothing heavy."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from copytrade_cli.cli import options
from copytrade_cli.cli.main import app
from copytrade_cli.errors import UsageError
from copytrade_cli.supervisor import decide
from copytrade_cli.supervisor.runner import CHANNELS

FOLLOW = ["follow", "add", "--follower", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
          "--leader", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]


def test_enums_spell_the_library_vocabulary():
    assert tuple(options.Sizing) == decide.SIZINGS
    assert tuple(options.SellMode) == decide.SELL_MODES
    assert tuple(options.SideFilter) == decide.SIDES
    assert tuple(options.Flow) == decide.FLOWS
    assert tuple(options.Channel) == CHANNELS
    assert set(options.TradeSide) == {"BUY", "SELL"}


@pytest.mark.parametrize("args,field", [
    (["--sizing", "kelly"], {"sizing": "kelly"}),
    (["--sells", "maybe"], {"sell_mode": "maybe"}),
    (["--side", "sideways"], {"side_filter": "sideways"}),
    (["--flow", "turbo"], {"flow": "turbo"}),
])
def test_bad_choice_is_the_library_error_before_anything_opens(tmp_path, args, field):
    with pytest.raises(UsageError) as e:
        decide.validate_follow(follower=FOLLOW[3], leader=FOLLOW[5], **field)
    res = CliRunner().invoke(app, FOLLOW + args, env={"COPYTRADE_HOME": str(tmp_path)})
    assert res.exit_code == 2
    assert res.output == f"Error: {e.value}\n"
    assert not (tmp_path / "state.db").exists()  # rejected while parsing: the state file was never opened


def test_choices_keep_their_spellings(tmp_path):
    from tests.cli.test_cli import record_proxy

    env = {"COPYTRADE_HOME": str(tmp_path)}
    record_proxy(tmp_path, FOLLOW[3])
    res = CliRunner().invoke(app, ["--json", *FOLLOW, "--side", "sell", "--sizing", "percent", "--amount", "2",
                                   "--flow", "buffer", "--sells", "ignore"], env=env)
    assert res.exit_code == 0, res.output
    assert '"side_filter": "SELL"' in res.output and '"flow": "buffer"' in res.output
    assert '"sizing": "percent"' in res.output and '"sell_mode": "ignore"' in res.output


@pytest.mark.parametrize("args,line", [
    (["deploy", "addresses", "--format", "xml"], "Error: --format 'xml': use table, json or env"),
    (["migrate", "users", "--format", "xml"], "Error: --format 'xml': use table, csv or json"),
    (["supervise", "--channels", "logs,radio"],
     "Error: --channels 'logs,radio': use a comma list of mempool, logs, activity, data_api"),
    (["supervise", "--channels", ","], "Error: --channels ',': use a comma list of mempool, logs, activity, data_api"),
    (["trade", "impersonate", "--side", "both"], "Error: --side 'BOTH': use one of BUY, SELL"),
])
def test_bad_values_of_the_other_commands(tmp_path, args, line):
    res = CliRunner().invoke(app, args, env={"COPYTRADE_HOME": str(tmp_path)})
    assert res.exit_code == 2 and res.output == line + "\n"


def test_channels_parse_in_order():
    assert options.Channels.parse(" logs , mempool") == (options.Channel.LOGS, options.Channel.MEMPOOL)
    assert str(options.Channels.parse("mempool,logs,activity")) == "mempool,logs,activity"


def test_cold_help_imports_nothing_heavy():
    code = ("import sys; sys.argv = ['copytrade', '--help']\n"
            "from copytrade_cli.cli.main import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "heavy = ('pydantic', 'sqlite_utils', 'web3', 'eth_account', 'redis', 'copytrade_cli.state', "
            "'copytrade_cli.settings', 'copytrade_cli.supervisor')\n"
            "print('heavy:', ','.join(m for m in heavy if m in sys.modules), file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "copytrade" in res.stdout, res.stderr
    assert res.stderr.strip() == "heavy:"
