"""Anomaly maths for the analysis engine's insights: robust z-scores and EWMA bands. Pure.

A robust z-score measures how far a value lies from the median in units of the median absolute
deviation (MAD, scaled by 1.4826 so it estimates the standard deviation of normal data): unlike the
mean and standard deviation, one wild value cannot hide itself by inflating them. EWMA bands follow
a drifting series (latency over a day) and flag a point outside mean ± k standard deviations of
the exponentially weighted history before it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MAD_TO_SIGMA = 1.4826  # MAD of normal data times this is its standard deviation
MEAN_AD_TO_SIGMA = 1.253314  # the same for the mean absolute deviation
DEFAULT_Z_LIMIT = 3.5  # Iglewicz and Hoaglin's cut-off for the modified z-score


def robust_z_scores(values: Sequence[float]) -> list[float]:
    """Each value's distance from the median in robust standard deviations: the scaled MAD, or,
    when more than half the values are equal (MAD 0), the scaled mean absolute deviation
    (Iglewicz and Hoaglin). When every value is equal, all scores are 0."""
    if not values:
        return []
    median = statistics.median(values)
    deviations = [abs(v - median) for v in values]
    spread = statistics.median(deviations) * MAD_TO_SIGMA
    if spread == 0:
        spread = statistics.fmean(deviations) * MEAN_AD_TO_SIGMA
    if spread == 0:
        return [0.0 for _ in values]
    return [(v - median) / spread for v in values]


def outliers(values: Sequence[float], z_limit: float = DEFAULT_Z_LIMIT) -> list[int]:
    """Indexes of the values whose robust z-score exceeds `z_limit` in size."""
    return [i for i, z in enumerate(robust_z_scores(values)) if abs(z) > z_limit]


@dataclass(frozen=True, slots=True)
class Band:
    """The EWMA band a point was judged against, and whether it fell outside."""

    mean: float
    low: float
    high: float
    value: float

    @property
    def outside(self) -> bool:
        """The point left the band (above or below)."""
        return not self.low <= self.value <= self.high


def ewma_bands(
    values: Sequence[float], alpha: float = 0.3, k: float = 3.0, warmup: int = 5
) -> list[Band | None]:
    """For each point, the band of mean +- k sigma of the exponentially weighted history before it
    (None for the first `warmup` points, whose plain mean and variance start the history). A
    point outside its band does not move the band, so one spike does not widen it."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if warmup < 2:
        raise ValueError(f"warmup must be at least 2 points, got {warmup}")
    bands: list[Band | None] = [None] * min(warmup, len(values))
    if len(values) <= warmup:
        return bands
    mean = statistics.fmean(values[:warmup])
    variance = statistics.pvariance(values[:warmup], mean)
    for value in values[warmup:]:
        sigma = math.sqrt(variance)
        band = Band(mean, mean - k * sigma, mean + k * sigma, value)
        bands.append(band)
        if band.outside:
            continue
        diff = value - mean
        increment = alpha * diff
        mean += increment
        variance = (1 - alpha) * (variance + diff * increment)
    return bands
