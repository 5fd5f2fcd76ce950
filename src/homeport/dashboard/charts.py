"""Line charts drawn on the server as SVG path data: no chart library, no script.

A chart is numbers only (coordinates and axis labels), so the template can place it inside an
`<svg>` element without anything to escape and without inline styles the CSP would block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WIDTH = 600
HEIGHT = 160
PAD_LEFT = 40
PAD_BOTTOM = 20


@dataclass(frozen=True)
class Chart:
    title: str
    path: str
    """SVG path data (`M x y L x y ...`), empty when there is nothing to draw."""
    points: int
    top: int
    """The value at the top of the plot: the largest sample, at least 1."""
    latest: int | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PAD_LEFT
    bottom: int = HEIGHT - PAD_BOTTOM


def line_chart(
    title: str, samples: list[tuple[datetime, int]], *, start: datetime, end: datetime
) -> Chart:
    """Plot `samples` (time, value) between `start` and `end`; times outside are dropped."""
    shown = [(t, v) for t, v in samples if start <= t <= end]
    top = max([1, *(v for _, v in shown)])
    span = max((end - start).total_seconds(), 1.0)
    plot_w = WIDTH - PAD_LEFT - 10
    plot_h = HEIGHT - PAD_BOTTOM - 10
    steps = []
    for t, v in shown:
        x = PAD_LEFT + plot_w * (t - start).total_seconds() / span
        y = HEIGHT - PAD_BOTTOM - plot_h * v / top
        steps.append(f"{x:.1f} {y:.1f}")
    path = ("M " + " L ".join(steps)) if steps else ""
    latest = shown[-1][1] if shown else None
    return Chart(title=title, path=path, points=len(shown), top=top, latest=latest)
