"""`agents loadtest --plot`: the PNG drawn from per-second figures, no servers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agents.loadstats import Second
from agents.plot import draw

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG carries first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82")  # complete, not truncated
    return width, height


def synthetic(seconds: int) -> list[Second]:
    """A run that keeps up for a while, then falls behind with growing latency."""
    rows = []
    for second in range(seconds):
        slow = max(0, second - seconds // 2)
        latencies = (20.0 + 30 * slow, 40.0 + 60 * slow, 80.0 + 90 * slow)
        rows.append(Second(second, 100, 100 - 10 * slow, *latencies))
    rows.append(Second(seconds, 0, 35, None, None, None))  # the drain: nothing sent, still finishing
    return rows


@pytest.mark.parametrize("rows", [synthetic(10), synthetic(1), []], ids=["ten-seconds", "one-second", "none"])
def test_draw_writes_a_valid_png(tmp_path: Path, rows: list[Second]) -> None:
    path = draw(rows, "agents loadtest --rate 100 --duration 10 --via route", tmp_path / "plots" / "run.png")
    assert path.exists()
    width, height = png_size(path)
    assert (width, height) == (1000, 700)  # figsize 10x7 at 100 dpi
    assert 10_000 < path.stat().st_size < 1_000_000
