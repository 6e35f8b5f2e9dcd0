"""The retransmission timeout, checked against RFC 6298's arithmetic.

Samples are chosen as powers of two so every intermediate value is exact in
binary floating point and the expected numbers can be compared with ``==``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanpay.core.rtt import ALPHA, BETA, K, RttEstimator


def test_constants_are_the_rfc_ones() -> None:
    assert (ALPHA, BETA, K) == (1 / 8, 1 / 4, 4)


def test_before_any_sample_the_initial_timeout_applies() -> None:
    est = RttEstimator()
    assert est.srtt is None and est.latest is None
    assert est.rto == 0.25
    assert RttEstimator(initial=1.0).rto == 1.0


def test_first_sample_sets_srtt_and_half_of_it_as_variance() -> None:
    est = RttEstimator()
    est.sample(0.125)
    assert est.srtt == 0.125
    assert est.rttvar == 0.0625
    assert est.latest == 0.125
    assert est.rto == 0.125 + 4 * 0.0625        # SRTT + K * RTTVAR = 0.375


def test_later_samples_update_variance_with_the_old_srtt_first() -> None:
    est = RttEstimator()
    est.sample(0.125)
    est.sample(0.25)
    # RTTVAR = 3/4 * 0.0625 + 1/4 * |0.125 - 0.25| ; SRTT = 7/8 * 0.125 + 1/8 * 0.25
    assert est.rttvar == 0.078125
    assert est.srtt == 0.140625
    assert est.rto == 0.140625 + 4 * 0.078125   # 0.453125
    est.sample(0.140625)
    assert est.rttvar == 0.75 * 0.078125
    assert est.srtt == 0.140625
    assert est.latest == 0.140625


def test_steady_samples_converge_on_the_sample() -> None:
    est = RttEstimator(floor=0.0)
    for _ in range(200):
        est.sample(0.5)
    assert est.srtt == pytest.approx(0.5)
    assert est.rttvar == pytest.approx(0.0, abs=1e-9)
    assert est.rto == pytest.approx(0.5 + est.granularity)


def test_clock_granularity_bounds_the_variance_term() -> None:
    """With no variance the RTO is SRTT + G, not SRTT (RFC 6298 section 2)."""
    est = RttEstimator(floor=0.0, cap=3.0, granularity=0.125)
    est.sample(1.0)
    est.rttvar = 0.0
    assert est.rto == 1.125


def test_lan_round_trips_hit_the_floor_of_two_milliseconds() -> None:
    est = RttEstimator()
    est.sample(0.0003)
    assert est.rto == 0.002


def test_the_timeout_follows_the_measured_round_trip_not_a_fixed_floor() -> None:
    """A 4 ms link settles at SRTT + G once its variance decays; a jittery one keeps 4 RTTVAR."""
    steady = RttEstimator()
    for _ in range(200):
        steady.sample(0.00390625)                   # 2**-8 s
    assert steady.rto == pytest.approx(0.00390625 + steady.granularity, rel=1e-3)
    jittery = RttEstimator()
    for i in range(200):
        jittery.sample(0.0078125 if i % 2 else 0.00390625)
    assert jittery.srtt is not None
    assert jittery.rto == pytest.approx(jittery.srtt + 4 * jittery.rttvar)
    assert 0.010 < jittery.rto < 0.020               # well above the floor: set by the variance


def test_slow_round_trips_hit_the_cap() -> None:
    est = RttEstimator()
    est.sample(2.0)
    assert est.rto == 1.0


def test_negative_samples_count_as_zero() -> None:
    """A clock that stepped back must not shrink the estimate below zero."""
    est = RttEstimator()
    est.sample(-1.0)
    assert est.srtt == 0.0 and est.rttvar == 0.0 and est.latest == 0.0
    assert est.rto == 0.002


def test_backoff_doubles_per_retry() -> None:
    est = RttEstimator()
    est.sample(0.0625)                 # RTO = 0.0625 + 4 * 0.03125 = 0.1875
    assert est.rto == 0.1875
    assert [est.backoff(n) for n in range(4)] == [0.1875, 0.375, 0.75, 1.0]


def test_backoff_is_capped() -> None:
    est = RttEstimator()
    est.sample(0.0625)
    assert est.backoff(5) == 1.0
    assert est.backoff(16) == 1.0
    assert est.backoff(10_000) == 1.0    # huge retry counts neither overflow nor grow


def test_backoff_before_any_sample_starts_from_the_initial_timeout() -> None:
    est = RttEstimator()
    assert [est.backoff(n) for n in range(3)] == [0.25, 0.5, 1.0]


@settings(deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=50),
       st.integers(min_value=0, max_value=100))
def test_timeouts_always_stay_between_floor_and_cap(samples: list[float], retries: int) -> None:
    est = RttEstimator()
    for s in samples:
        est.sample(s)
    assert est.floor <= est.rto <= est.cap
    assert est.rto <= est.backoff(retries) <= est.cap
