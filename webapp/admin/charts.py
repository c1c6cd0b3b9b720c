"""A line chart drawn on the server as SVG geometry: no script, readable without colour.

Each series has its own line pattern (solid, dashed, dotted) and marker shape (circle,
square, triangle), so the lines can be told apart in greyscale; the template also renders the
numbers as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH = 720
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 44, 30, 16, 40
STYLES = (
    # (css class, stroke-dasharray, marker shape)
    ("series-a", "", "circle"),
    ("series-b", "8 5", "square"),
    ("series-c", "2 4", "triangle"),
)
MARKER = 4.5


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: int
    day: date

    def triangle(self, size: float = MARKER + 1) -> str:
        """The corners of an upward triangle around the point, for ``<polygon points>``."""
        return (
            f"{self.x:.1f},{self.y - size:.1f} "
            f"{self.x - size:.1f},{self.y + size * 0.8:.1f} "
            f"{self.x + size:.1f},{self.y + size * 0.8:.1f}"
        )


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    css_class: str
    dash: str
    marker: str
    points: list[Point]
    total: int

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    series: list[Series]
    days: list[date]

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    def rows(self) -> list[tuple[date, list[int]]]:
        """The numbers by day, for the table beside the chart."""
        return [(day, [s.points[i].value for s in self.series]) for i, day in enumerate(self.days)]


def nice_ceiling(value: int) -> int:
    """A round upper bound for the y axis that splits into 4 whole-number ticks."""
    magnitude = 1
    while True:
        for step in (4, 8, 12, 16, 20, 40, 60, 80):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def line_chart(
    days: Sequence[date],
    series: Sequence[tuple[str, str, Sequence[int]]],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> LineChart:
    """Geometry for ``series`` (key, label, values per day) over ``days``, in a ``width`` by
    ``height`` box (a narrow one for phones keeps its labels readable)."""
    if len(series) > len(STYLES):
        raise ValueError(f"at most {len(STYLES)} series can be told apart")
    top_value = nice_ceiling(max((max(values, default=0) for _, _, values in series), default=0))
    plot_width = width - LEFT - RIGHT
    plot_height = height - TOP - BOTTOM
    step = plot_width / max(len(days) - 1, 1)

    def x_at(index: int) -> float:
        return LEFT + index * step

    def y_at(value: int) -> float:
        return TOP + plot_height * (1 - value / top_value)

    drawn = []
    for (key, label, values), (css, dash, marker) in zip(series, STYLES, strict=False):
        points = [
            Point(x=x_at(i), y=y_at(value), value=value, day=days[i])
            for i, value in enumerate(values)
        ]
        drawn.append(Series(key, label, css, dash, marker, points, total=sum(values)))
    y_ticks = [Tick(y_at(top_value * i // 4), f"{top_value * i // 4:,}") for i in range(5)]
    last = len(days) - 1
    every = 7 if width >= 600 else 10  # a label needs about 50 units of room
    x_ticks = [
        Tick(x_at(i), days[i].strftime("%d %b"))
        for i in range(len(days))
        if (last - i) % every == 0
    ]
    return LineChart(
        width=width,
        height=height,
        left=LEFT,
        right=RIGHT,
        top=TOP,
        bottom=BOTTOM,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        series=drawn,
        days=list(days),
    )
