"""Server-rendered SVG charts: readable without JavaScript, safe under the strict CSP.

Every piece of text goes through markupsafe's `escape`, colours are SVG presentation attributes
(`fill=`, `stroke=`; the CSP forbids `style=`), and each chart carries a `<title>` and `<desc>`
for screen readers plus a `<title>` per bar that browsers show as a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 540
HEIGHT = 250
LEFT = 48
RIGHT = 12
TOP = 34
BOTTOM = 36
AXIS = "#b9c0cc"
GRID = "#eceef2"
INK = "#5d6678"
TEXT = "#1d2330"
BUDGET = "#b42318"
FONT_SIZE = "12"
MAX_X_LABELS = 8

# The dashboard's palette (app.css): one colour per intent and per outcome, used everywhere.
INTENT_COLOURS: dict[str, str] = {
    "payment_change": "#2557a7",
    "credential_request": "#b42318",
    "urgent_transfer": "#9a5b00",
    "gift_card": "#1f7a3f",
    "data_request": "#6b4fa3",
}
OUTCOME_COLOURS: dict[str, str] = {
    "confirmed_fraud": "#b42318",
    "verified_legitimate": "#1f7a3f",
    "false_positive": "#9a5b00",
    "expired": "#8a93a6",
}
INBOUND = "#2557a7"
OUTBOUND = "#9db5dc"
FALLBACK = "#5d6678"


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked layer of a bar chart: a name for the legend, a colour, a value per bar."""

    key: str
    label: str
    colour: str
    values: Sequence[float]


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a horizontal bar chart."""

    key: str
    label: str
    colour: str
    value: float


def _tag(name: str, attrs: Mapping[str, object], *children: str) -> Markup:
    """An element with escaped attribute values; children must already be Markup or escaped."""
    rendered = "".join(f' {key}="{escape(str(value))}"' for key, value in attrs.items())
    inner = "".join(str(escape(c)) for c in children)
    if not inner:
        return Markup(f"<{name}{rendered}/>")  # noqa: S704 - attributes and children are escaped
    return Markup(f"<{name}{rendered}>{inner}</{name}>")  # noqa: S704 - escaped above


def _text(x: float, y: float, label: str, **attrs: object) -> Markup:
    base: dict[str, object] = {
        "x": _n(x),
        "y": _n(y),
        "fill": INK,
        "font-size": FONT_SIZE,
    }
    base.update({k.replace("_", "-"): v for k, v in attrs.items()})
    return _tag("text", base, str(label))


def _n(value: float) -> str:
    """A coordinate with at most one decimal."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ticks(top: float, *, count: int = 4, integer: bool = True) -> list[float]:
    """Round tick values from 0 to at least `top` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0.0, 1.0] if integer else [0.0, 0.01]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    ticks = [0.0]
    while ticks[-1] < top - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


LEGEND_ROW = 18


@dataclass(frozen=True, slots=True)
class _Plot:
    """The geometry of a bar chart: a legend of `rows` rows above a plot of `slots` bars."""

    rows: int
    slots: int
    top_value: float

    @property
    def top(self) -> float:
        return TOP + LEGEND_ROW * (self.rows - 1)

    @property
    def height(self) -> float:
        return HEIGHT + LEGEND_ROW * (self.rows - 1)

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM

    @property
    def slot(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(1, self.slots)

    @property
    def bar_width(self) -> float:
        return max(1.0, self.slot * 0.72)

    def y(self, value: float) -> float:
        """The y coordinate of a value."""
        return self.bottom - (self.bottom - self.top) * value / self.top_value

    def centre(self, i: int) -> float:
        """The x coordinate of the middle of bar `i`."""
        return LEFT + self.slot * i + self.slot / 2


def _frame(
    chart_id: str, title: str, description: str, height: float, *body: Markup, css: str = ""
) -> Markup:
    return _tag(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {_n(height)}",
            "class": f"chart {css}".strip(),
            "id": chart_id,
            "role": "img",
            "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
            "font-family": "system-ui, sans-serif",
        },
        _tag("title", {"id": f"{chart_id}-title"}, title),
        _tag("desc", {"id": f"{chart_id}-desc"}, description),
        *body,
    )


def _legend_rows(items: Sequence[tuple[str, str]]) -> list[list[tuple[float, str, str]]]:
    """Legend entries (x, label, colour) wrapped into rows that fit the chart's width."""
    rows: list[list[tuple[float, str, str]]] = [[]]
    x = float(LEFT)
    for label, colour in items:
        width = 26 + 7.2 * len(label)
        if rows[-1] and x + width > WIDTH - RIGHT:
            rows.append([])
            x = float(LEFT)
        rows[-1].append((x, label, colour))
        x += width
    return rows


def _legend(rows: list[list[tuple[float, str, str]]]) -> Markup:
    """Colour swatches with their names along the top."""
    parts: list[Markup] = []
    for r, row in enumerate(rows):
        y = 14 + LEGEND_ROW * r
        for x, label, colour in row:
            parts.append(
                _tag(
                    "rect",
                    {"x": _n(x), "y": _n(y - 10), "width": "11", "height": "11", "fill": colour},
                )
            )
            parts.append(_text(x + 15, y, label, fill=TEXT))
    return _tag("g", {"class": "legend"}, *parts)


def _y_axis(plot: _Plot, ticks: list[float], fmt: Callable[[float], str]) -> Markup:
    parts: list[Markup] = []
    for t in ticks:
        y = plot.y(t)
        parts.append(
            _tag(
                "line",
                {
                    "x1": LEFT,
                    "x2": WIDTH - RIGHT,
                    "y1": _n(y),
                    "y2": _n(y),
                    "stroke": AXIS if t == 0 else GRID,
                    "stroke-width": "1",
                },
            )
        )
        parts.append(_text(LEFT - 6, y + 4, fmt(t), text_anchor="end"))
    return _tag("g", {"class": "axis y-axis"}, *parts)


def _x_labels(plot: _Plot, labels: Sequence[str]) -> Markup:
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    parts = [
        _text(plot.centre(i), plot.bottom + 17, label, text_anchor="middle")
        for i, label in enumerate(labels)
        if i % every == 0
    ]
    return _tag("g", {"class": "axis x-axis"}, *parts)


def _empty_note(plot: _Plot, message: str) -> Markup:
    y = (plot.top + plot.bottom) / 2
    return _text(WIDTH / 2, y, message, text_anchor="middle", font_size="13", fill=TEXT)


def _count(value: float) -> str:
    return f"{value:,.0f}"


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    empty: str = "Nothing in this window",
) -> Markup:
    """Vertical bars, one per label (a day), stacked by series, with axes and a legend."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    ticks = nice_ticks(max(totals, default=0))
    legend = _legend_rows([(s.label, s.colour) for s in series])
    plot = _Plot(rows=len(legend), slots=len(labels), top_value=ticks[-1])
    bars: list[Markup] = []
    for i, label in enumerate(labels):
        base = 0.0
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            y_top, y_bottom = plot.y(base + value), plot.y(base)
            tip = f"{label} · {s.label}: {_count(value)}{unit}"
            bars.append(
                _tag(
                    "rect",
                    {
                        "x": _n(plot.centre(i) - plot.bar_width / 2),
                        "y": _n(y_top),
                        "width": _n(plot.bar_width),
                        "height": _n(max(0.5, y_bottom - y_top)),
                        "fill": s.colour,
                        "class": f"bar bar-{s.key}",
                        "data-value": _count(value),
                    },
                    _tag("title", {}, tip),
                )
            )
            base += value
    body = [
        _legend(legend),
        _y_axis(plot, ticks, _count),
        _x_labels(plot, labels),
        _tag("g", {"class": "bars"}, *bars),
    ]
    if not any(totals):
        body.append(_empty_note(plot, empty))
    return _frame(chart_id, title, description, plot.height, *body)


def horizontal_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    empty: str = "Nothing in this window",
) -> Markup:
    """One horizontal bar per category with its count and share written beside it."""
    total = sum(b.value for b in bars)
    row = 32.0
    height = 14 + row * max(1, len(bars)) + (24 if not total else 6)
    label_w = 130.0
    plot_w = WIDTH - LEFT - label_w - 90
    top = max((b.value for b in bars), default=0) or 1
    parts: list[Markup] = []
    for i, b in enumerate(bars):
        y = 8 + row * i
        w = plot_w * b.value / top
        share = f"{100 * b.value / total:.0f}%" if total else "0%"
        parts.append(_text(LEFT + label_w - 8, y + 15, b.label, text_anchor="end", fill=TEXT))
        parts.append(
            _tag(
                "rect",
                {
                    "x": _n(LEFT + label_w),
                    "y": _n(y + 2),
                    "width": _n(max(w, 1.0 if b.value else 0.0)),
                    "height": "20",
                    "fill": b.colour,
                    "class": f"bar bar-{b.key}",
                    "data-value": _count(b.value),
                },
                _tag("title", {}, f"{b.label}: {_count(b.value)} ({share})"),
            )
        )
        parts.append(_text(LEFT + label_w + w + 6, y + 16, f"{_count(b.value)} · {share}"))
    if not total:
        parts.append(
            _text(WIDTH / 2, height - 8, empty, text_anchor="middle", font_size="13", fill=TEXT)
        )
    return _frame(chart_id, title, description, height, *parts, css="chart-hbars")


def _percent(value: float) -> str:
    shown = f"{100 * value:.2f}".rstrip("0").rstrip(".")
    return f"{shown}%"


def rate_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    rates: Sequence[float | None],
    counts: Sequence[tuple[int, int]],
    budget: float | None,
    bar_label: str,
    budget_label: str,
    empty: str = "No inbound email in this window",
) -> Markup:
    """A share per day as bars (`alerts of emails` in each tooltip) and a dashed budget line."""
    top = max([r for r in rates if r is not None] + [budget or 0.0], default=0.0)
    ticks = nice_ticks(top * 1.1 if top else 0.01, integer=False)
    items = [(bar_label, INBOUND)]
    if budget is not None:
        items.append((f"{budget_label} ({_percent(budget)})", BUDGET))
    legend = _legend_rows(items)
    plot = _Plot(rows=len(legend), slots=len(labels), top_value=ticks[-1])
    bars: list[Markup] = []
    for i, (label, rate) in enumerate(zip(labels, rates, strict=True)):
        if rate is None:
            continue
        alerts, emails = counts[i]
        y = plot.y(rate)
        bars.append(
            _tag(
                "rect",
                {
                    "x": _n(plot.centre(i) - plot.bar_width / 2),
                    "y": _n(y),
                    "width": _n(plot.bar_width),
                    "height": _n(max(0.5, plot.y(0) - y)),
                    "fill": INBOUND,
                    "class": "bar bar-alert-share",
                    "data-value": _percent(rate),
                },
                _tag(
                    "title",
                    {},
                    f"{label} · {bar_label}: {_percent(rate)} ({alerts:,} of {emails:,} emails)",
                ),
            )
        )
    body: list[Markup] = [
        _legend(legend),
        _y_axis(plot, ticks, _percent),
        _x_labels(plot, labels),
        _tag("g", {"class": "bars"}, *bars),
    ]
    if budget is not None:
        y = plot.y(budget)
        body.append(
            _tag(
                "line",
                {
                    "x1": LEFT,
                    "x2": WIDTH - RIGHT,
                    "y1": _n(y),
                    "y2": _n(y),
                    "stroke": BUDGET,
                    "stroke-width": "2",
                    "stroke-dasharray": "6 4",
                    "class": "budget-line",
                },
                _tag("title", {}, f"{budget_label}: {_percent(budget)}"),
            )
        )
    if all(r is None for r in rates):
        body.append(_empty_note(plot, empty))
    return _frame(chart_id, title, description, plot.height, *body)
