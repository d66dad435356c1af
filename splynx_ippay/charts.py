"""Small server-rendered SVG charts for the staff pages (the collections overview).

[decision] Plain SVG written here rather than pygal: the charts need bars, stacks and a
line, which take a few dozen lines; pygal would add a dependency, and its charts load their
tooltips script from a CDN unless told not to and style themselves with inline ``style``
attributes that the pages' Content-Security-Policy refuses. These charts have no script
and no inline style: colours come from the classes ``series-0`` … ``series-5`` in
static/ippay.css, each bar and point carries a ``<title>`` (a tooltip, and what a screen
reader reads), and the figure's table is offered beside it (``<details>``).

They are drawn on a 400-unit-wide ``viewBox`` with 11-unit text; the stylesheet lets a
plot grow with its column on a desktop but never shrink below 400 px, so that its text is
never smaller than 11 px: on a phone it scrolls sideways inside its box. The long axis shows
every n-th label, n such that labels never overlap.
"""

from typing import Callable, List, NamedTuple, Sequence

from markupsafe import Markup, escape

WIDTH = 400
HEIGHT = 200
#: Room for the value axis (left), the labels (bottom) and the legend (top).
LEFT, BOTTOM, TOP, RIGHT = 52, 24, 22, 8
FONT = 11
#: About how wide a character of a label is, in units of the font size.
CHAR_WIDTH = 0.6
SERIES_CLASSES = 6


class Series(NamedTuple):
    """One row of values (one per label), with its name in the legend."""

    name: str
    values: Sequence[float]


def _nice_top(value):
    """A round number at or above ``value`` for the top of the value axis (an even one
    from 2 up, so that its middle tick is a whole number too)."""
    if value <= 2:
        return 2
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _number(value):
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _legend(series):
    parts, x = [], LEFT
    for index, row in enumerate(series):
        parts.append(f'<rect class="series-{index % SERIES_CLASSES}" x="{x}" y="4" width="9" '
                     f'height="9"/><text x="{x + 12}" y="12.5">{escape(row.name)}</text>')
        x += 20 + int(len(row.name) * FONT * 0.55)
    return "".join(parts)


def _axes(labels, top, fmt, slot):
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="gridline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_number(y)}" '
                     f'y2="{_number(y)}"/><text class="axis" x="{LEFT - 4}" y="{_number(y + 4)}" '
                     f'text-anchor="end">{escape(fmt(top * fraction))}</text>')
    # Every n-th label, n such that a label and a gap fit in n slots.
    widest = max((len(label) for label in labels), default=1) * FONT * CHAR_WIDTH + 6
    every = max(1, -(-int(widest) // max(int(slot), 1)))
    for index in range(0, len(labels), every):
        x = LEFT + slot * (index + 0.5)
        parts.append(f'<text class="axis" x="{_number(x)}" y="{HEIGHT - 8}" '
                     f'text-anchor="middle">{escape(labels[index])}</text>')
    return "".join(parts)


def _frame(title, body, table, height=HEIGHT):
    return Markup(
        f'<figure class="chart"><svg viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" font-size="{FONT}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title>{body}</svg>'
        f'<details><summary>{escape(title)}: the figures</summary>{table}</details></figure>')


def _table(labels, series, fmt):
    """The figures as a table: the labels that have a value (a quiet day is no row)."""
    head = "".join(f"<th scope=\"col\">{escape(s.name)}</th>" for s in series)
    rows = "".join(
        f"<tr><th scope=\"row\">{escape(label)}</th>"
        + "".join(f"<td>{escape(fmt(s.values[i]))}</td>" for s in series) + "</tr>"
        for i, label in enumerate(labels) if any(s.values[i] for s in series)) \
        or f'<tr><td colspan="{len(series) + 1}">None</td></tr>'
    return (f'<table class="table small"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{rows}</tbody></table>')


def bars(title, labels: List[str], series: List[Series], fmt: Callable = _number,
         stacked=True, top=None, axis_fmt: Callable = None):
    """Vertical bars, one slot per label: the series stacked (or side by side). ``fmt``
    writes a value (tooltips, the table), ``axis_fmt`` the value axis (default ``fmt``)."""
    if stacked:
        peak = max([sum(s.values[i] for s in series) for i in range(len(labels))] or [0])
    else:
        peak = max([v for s in series for v in s.values] or [0])
    top = top or _nice_top(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    width = slot * 0.8 / (1 if stacked else max(len(series), 1))
    parts = [_legend(series) if len(series) > 1 else "",
             _axes(labels, top, axis_fmt or fmt, slot)]
    for i, label in enumerate(labels):
        base = 0.0
        for index, row in enumerate(series):
            value = row.values[i]
            if not value:
                continue
            h = plot_h * value / top
            x = LEFT + slot * i + slot * 0.1 + (0 if stacked else width * index)
            y = TOP + plot_h - h - (plot_h * base / top if stacked else 0)
            parts.append(f'<rect class="series-{index % SERIES_CLASSES}" x="{_number(x)}" '
                         f'y="{_number(y)}" width="{_number(width)}" height="{_number(h)}">'
                         f'<title>{escape(label)}, {escape(row.name)}: {escape(fmt(value))}'
                         f'</title></rect>')
            if stacked:
                base += value
    return _frame(title, "".join(parts), _table(labels, series, fmt))


def line(title, labels: List[str], series: Series, fmt: Callable = _number, top=None):
    """One series as a line with a point per label (e.g. a rate per run)."""
    top = top or _nice_top(max(list(series.values) or [0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    points = [(LEFT + slot * (i + 0.5), TOP + plot_h * (1 - v / top))
              for i, v in enumerate(series.values)]
    parts = [_axes(labels, top, fmt, slot)]
    if len(points) > 1:
        path = " ".join(f"{_number(x)},{_number(y)}" for x, y in points)
        parts.append(f'<polyline class="series-line" points="{path}"/>')
    for (x, y), label, value in zip(points, labels, series.values):
        parts.append(f'<circle class="series-0" cx="{_number(x)}" cy="{_number(y)}" r="2.5">'
                     f'<title>{escape(label)}: {escape(fmt(value))}</title></circle>')
    return _frame(title, "".join(parts), _table(labels, [series], fmt))


def hbars(title, labels: List[str], series: List[Series], fmt: Callable = _number):
    """Horizontal stacked bars, one row per label (long labels such as decline reasons)."""
    row_h, label_w = 18, 150
    height = TOP + row_h * max(len(labels), 1) + 6
    peak = max([sum(s.values[i] for s in series) for i in range(len(labels))] or [0]) or 1
    plot_w = WIDTH - label_w - RIGHT - 40
    parts = [_legend(series) if len(series) > 1 else ""]
    for i, label in enumerate(labels):
        y = TOP + row_h * i
        short = label if len(label) <= 26 else label[:25] + "…"
        parts.append(f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end">'
                     f'{escape(short)}<title>{escape(label)}</title></text>')
        x, total = float(label_w), 0
        for index, row in enumerate(series):
            value = row.values[i]
            if not value:
                continue
            w = plot_w * value / peak
            parts.append(f'<rect class="series-{index % SERIES_CLASSES}" x="{_number(x)}" '
                         f'y="{y + 3}" width="{_number(w)}" height="{row_h - 6}"><title>'
                         f'{escape(label)}, {escape(row.name)}: {escape(fmt(value))}</title></rect>')
            x += w
            total += value
        parts.append(f'<text class="axis" x="{_number(x + 4)}" y="{y + 12}">'
                     f'{escape(fmt(total))}</text>')
    return _frame(title, "".join(parts), _table(labels, series, fmt), height)
