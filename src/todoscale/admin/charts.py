"""Charts drawn on the server as SVG: no script, no library, nothing from a CDN."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 640, 120, 4


@dataclass
class Chart:
    """A line chart ready for the template: the polyline's points and the largest value."""

    points: str
    top: float
    width: int = WIDTH
    height: int = HEIGHT


def line_chart(values: list[float]) -> Chart:
    """Scale `values` (oldest first) into a polyline of the chart's size."""
    top = max(values, default=0.0) or 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    points = " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (value / top) * (HEIGHT - 2 * PAD):.1f}"
        for i, value in enumerate(values)
    )
    return Chart(points=points, top=top)
