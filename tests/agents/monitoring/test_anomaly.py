"""Robust z-scores and EWMA bands, with exact values and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.monitoring.anomaly import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA, ewma_bands, outliers, robust_z_scores


def test_robust_z_scores_exact_values() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 50.0]
    # median 12, absolute deviations 2, 0, 1, 1, 38 -> MAD 1
    assert robust_z_scores(values) == pytest.approx(
        [-2 / MAD_TO_SIGMA, 0, -1 / MAD_TO_SIGMA, 1 / MAD_TO_SIGMA, 38 / MAD_TO_SIGMA]
    )
    assert outliers(values) == [4]


def test_one_wild_value_cannot_hide_itself() -> None:
    latencies = [100.0] * 5 + [101.0, 99.0, 100.0, 102.0, 98.0] + [5000.0]
    assert outliers(latencies) == [10]
    # The mean and standard deviation would have said z = 3.16: under a cut-off of 3.5.
    mean = sum(latencies) / len(latencies)
    sd = math.sqrt(sum((v - mean) ** 2 for v in latencies) / len(latencies))
    assert (5000.0 - mean) / sd < 3.5


def test_ties_constant_series_and_empty_input() -> None:
    assert robust_z_scores([]) == []
    assert robust_z_scores([5.0, 5.0, 5.0, 5.0]) == [0.0] * 4
    # More than half equal: the MAD is 0, the scaled mean absolute deviation (1 here) takes over.
    assert robust_z_scores([5.0, 5.0, 5.0, 9.0]) == pytest.approx([0, 0, 0, 4 / MEAN_AD_TO_SIGMA])


def test_ewma_band_flags_a_step_and_ignores_noise() -> None:
    steady = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0, 103.0, 97.0, 100.0, 101.0]
    bands = ewma_bands([*steady, 180.0, 100.0])
    assert bands[:5] == [None] * 5 and ewma_bands(steady[:3]) == [None] * 3
    assert [b.outside for b in bands[5:10] if b is not None] == [False] * 5
    spike, after = bands[10], bands[11]
    assert spike is not None and spike.outside and spike.value == 180.0
    # The spike did not widen the band the next point is judged by.
    assert after is not None and not after.outside and after.high == spike.high


def test_alpha_is_checked() -> None:
    with pytest.raises(ValueError, match="alpha must be in"):
        ewma_bands([1.0], alpha=0)
    with pytest.raises(ValueError, match="warmup must be"):
        ewma_bands([1.0], warmup=1)


# Hundredths (latencies in ms, ratios): values far below float precision after a shift would
# measure rounding, not the maths.
@given(
    st.lists(st.integers(-(10**6), 10**6).map(lambda n: n / 100), min_size=1, max_size=40),
    st.integers(-1000, 1000).map(float),
    st.sampled_from([0.5, 1.0, 2.0, 4.0]),
)
def test_z_scores_do_not_change_under_shift_and_scale(
    values: list[float], shift: float, scale: float
) -> None:
    base = robust_z_scores(values)
    moved = robust_z_scores([v * scale + shift for v in values])
    for a, b in zip(base, moved, strict=True):
        if math.isinf(a) or abs(a) > 1e6:
            continue
        assert b == pytest.approx(a, rel=1e-6, abs=1e-6)
