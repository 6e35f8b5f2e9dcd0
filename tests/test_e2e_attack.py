"""An attacker host on the LAN forging 1 000 datagrams a second, against two real lanpays.

Host mallory runs the forger of tools/attack.py: it learns the real peers from
their broadcast announces, as anyone on the LAN can, and sends forged
datagrams of one kind, from spoofed source addresses (raw IPv4 sockets).  For
each kind, with and without ``--code``, alice and bob are started during the
flood and must be welcomed, paired with each other; a payment each way made
during the flood lands exactly once; neither process crashes, and their
memory stays flat while the flood goes on.  Without ``--code`` a live namesake
cannot be told from the real peer, so pairing is held off while it lasts and
must follow once it goes quiet.

The liveness bounds (3 s, and 10 s after a namesake goes quiet) are asserted
only as deadlines three times as long: a bound on failure, not a measurement.
The measured times are what ``sudo python3 tools/attack.py run`` prints
(docs/SECURITY.md, "Under a flood").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netlan import LanpayProcess, count_udp_arrivals, netns_lan, require_tools, udp_arrivals

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import attack  # noqa: E402  (tools/ is not a package)

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

BOUND = attack.BOUND           # both welcomed this long after both were started
NAMESAKE_BOUND = attack.NAMESAKE_BOUND  # ... or after a live namesake went quiet, without --code
SLACK = 3.0                 # deadlines are this many times the bound
SOAK = 3.0                  # seconds of flood after pairing, during the payments and the RSS samples
RSS_GROWTH_KIB = 4096       # a lanpay's RSS may grow this much during the soak, no more
ADDRS = {"alice": "10.77.0.1", "bob": "10.77.0.2"}
CODE = [False, True]

#: Kinds whose bound is not met today, and where the time goes (docs/SECURITY.md, "Under a flood").
NOT_MET: dict[tuple[str, bool], str] = {}
#: Kinds that miss the bound in some runs only (none since announces are signed and counted: a copy
#: of a peer's announce from another host is no news, docs/SECURITY.md section 6).
RACY: dict[tuple[str, bool], str] = {}


def scenario(kind: str, code: bool, lanpay, make_lan, request) -> tuple[attack.Outcome, dict[str, LanpayProcess],
                                                                     netns_lan.Lan]:
    """Run one kind of flood against a fresh alice and bob on a fresh LAN; return what it showed."""
    require_tools("ip", "nft")
    lan = make_lan(["alice", "bob", "mallory"])
    for name in ADDRS:
        count_udp_arrivals(lan, name)

    def attacker(host: str, argv: list[str]) -> LanpayProcess:
        proc = LanpayProcess(f"{host}-forge", lan.exec_argv(host, argv))
        request.node._lanpay_procs.append(proc)
        return proc

    holds_off = kind == attack.NAMESAKE and not code
    deadline = SLACK * (NAMESAKE_BOUND if holds_off else BOUND)
    outcome, procs = attack.run_kind(kind, code, lan, lanpay, attacker, soak=SOAK, deadline=deadline)
    return outcome, procs, lan


def check_paired_and_paid(outcome: attack.Outcome, procs: dict[str, LanpayProcess], lan: netns_lan.Lan) -> None:
    """Both welcomed, each with the other; the payments made during the flood landed once; memory flat."""
    assert outcome.both_welcomed is not None, "\n".join(p.transcript() for p in procs.values())
    alice, bob = procs["alice"], procs["bob"]
    for me, other in ((alice, "bob"), (bob, "alice")):
        paired = [line for line in me.lines if line.startswith("Paired with")]
        assert len(paired) == 1 and paired[0].startswith(f"Paired with {other} ({ADDRS[other]})"), \
            me.transcript()
        assert sum(1 for line in me.lines if attack.WELCOME.match(line)) == 1, me.transcript()
    bob.expect(r"You were paid 10\.00! — during the flood")
    alice.expect(r"You were paid 3\.25!")
    assert alice.balance() == -675
    assert bob.balance() == 675
    for me in (alice, bob):
        assert sum(1 for line in me.lines if "You were paid" in line) == 1, me.transcript()
        assert me.proc.poll() is None, f"{me.label} died\n{me.transcript()}"
        growth = outcome.rss_end[me.label] - outcome.rss_start[me.label]
        assert outcome.rss_start[me.label] > 0 and growth <= RSS_GROWTH_KIB, \
            f"{me.label}: RSS {outcome.rss_start[me.label]} -> {outcome.rss_end[me.label]} KiB during the flood"
    forged = outcome.soak or outcome.forged
    assert forged["learned"] == ["alice", "bob"] or outcome.kind in ("namesake", "fakes")
    assert forged["sent"] > 0 and forged["errors"] == 0
    for name in ADDRS:     # the flood reached both (each gets about half, plus the real traffic)
        assert udp_arrivals(lan, name) >= int(forged["sent"]) // 4, f"{name}: the forged datagrams did not arrive"
    assert alice.exit() == 0
    assert bob.exit() == 0


def _marks(kind: str, code: bool) -> list:
    if (kind, code) in NOT_MET:
        return [pytest.mark.xfail(reason=NOT_MET[kind, code], strict=True)]
    if (kind, code) in RACY:
        return [pytest.mark.xfail(reason=RACY[kind, code], strict=False)]
    return []


CASES = [pytest.param(kind, code, id=f"{kind}-{'code' if code else 'no-code'}", marks=_marks(kind, code))
         for kind in attack.KINDS for code in CODE if not (kind == attack.NAMESAKE and not code)]


@pytest.mark.parametrize(("kind", "code"), CASES)
def test_under_a_flood_of_one_kind_both_pair_with_each_other_and_pay_exactly_once(
        kind: str, code: bool, lanpay, make_lan, request) -> None:
    outcome, procs, lan = scenario(kind, code, lanpay, make_lan, request)
    assert outcome.both_welcomed is not None and outcome.both_welcomed <= SLACK * BOUND, \
        "\n".join(p.transcript() for p in procs.values())
    check_paired_and_paid(outcome, procs, lan)


def test_a_live_namesake_holds_pairing_off_until_it_goes_quiet_then_both_pair(lanpay, make_lan, request) -> None:
    outcome, procs, lan = scenario(attack.NAMESAKE, False, lanpay, make_lan, request)
    assert not outcome.paired_during_flood, "paired while namesakes of both were announcing"
    for me, other in (("alice", "bob"), ("bob", "alice")):
        warned = [line for line in procs[me].lines
                  if line.startswith(f"Warning: more than one peer is called {other} ")]
        assert warned, procs[me].transcript()
    assert outcome.from_flood_end
    assert outcome.both_welcomed is not None and outcome.both_welcomed <= SLACK * NAMESAKE_BOUND, \
        "\n".join(p.transcript() for p in procs.values())
    check_paired_and_paid(outcome, procs, lan)
