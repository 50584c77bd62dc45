#!/usr/bin/env python3
"""Draws the SVG charts of the comparisons from the JSON results they write.

Usage: compare/chart.py RESULTS.json...

For each file compare/charts/NAME.json it writes, beside it:

- NAME-throughput.svg: throughput by client count (or outstanding proposals), one bar
  per side in each group, the value printed on each bar;
- NAME-latency.svg, when the results have latencies: the latency distribution of each
  side, one panel per client count, percentiles on a scale that spreads the tail
  (50, 90, 99, 99.9, 99.99 and the maximum equally apart), latency on a log scale.

The JSON schema, written by each comparison's binary:

    {"name": "server", "title": "...", "x_label": "clients", "unit": "writes/s",
     "sides": ["raft-kv", "etcd"],
     "throughput": [{"side": "raft-kv", "x": 1, "value": 1234.0}, ...],
     "latency": [{"side": "raft-kv", "x": 64,
                  "percentiles": [[50.0, 123.4], [99.0, 456.7], ...]}, ...]}

Latencies are in microseconds; "latency" may be missing or empty. Only Python's standard
library is used, so that the charts need nothing beyond what the comparisons need.
"""

import json
import math
import sys
from html import escape
from pathlib import Path

# One colour per side, in the order of "sides": ours first, in the project's blue.
COLOURS = ["#1f5fa8", "#d9822b", "#5a9e4b", "#8e5ba8", "#b84a4a"]
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


def thousands(value):
    """1234567.8 as 1,234,568; small values keep one decimal."""
    if abs(value) < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def nice_ceiling(value):
    """The smallest 1, 2 or 5 times a power of ten at or above value."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def text(x, y, content, size=12, anchor="middle", weight="normal", colour="#222"):
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' "
        f"text-anchor='{anchor}' font-weight='{weight}' fill='{colour}'>"
        f"{escape(str(content))}</text>"
    )


def legend(sides, x, y):
    """A row of coloured squares with side names, starting at (x, y)."""
    parts = []
    for position, side in enumerate(sides):
        left = x + position * 170
        colour = COLOURS[position % len(COLOURS)]
        parts.append(f"<rect x='{left}' y='{y - 10}' width='12' height='12' fill='{colour}'/>")
        parts.append(text(left + 18, y, side, anchor="start"))
    return parts


def svg(width, height, parts):
    body = "\n".join(parts)
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>\n"
        f"<rect width='{width}' height='{height}' fill='white'/>\n{body}\n</svg>\n"
    )


def throughput_chart(results):
    """Grouped bars: one group per x value, one bar per side."""
    sides = results["sides"]
    xs = sorted({point["x"] for point in results["throughput"]})
    value = {(point["side"], point["x"]): point["value"] for point in results["throughput"]}
    width, height = 120 + 170 * len(xs) * max(1, len(sides)) // 2 + 60, 420
    # Wide enough for the title (about 8.5 pixels per character at its size).
    width = max(width, 560, int(len(results["title"]) * 8.5) + 40)
    left, right, top, bottom = 90, 30, 60, 70
    plot_width, plot_height = width - left - right, height - top - bottom
    top_value = nice_ceiling(max(value.values(), default=1) * 1.1)

    parts = [text(width / 2, 24, results["title"], size=15, weight="bold")]
    parts += legend(sides, left, 46)
    # Horizontal grid lines and their labels, five steps.
    for step in range(6):
        level = top_value * step / 5
        y = top + plot_height - plot_height * step / 5
        parts.append(
            f"<line x1='{left}' y1='{y:.1f}' x2='{width - right}' y2='{y:.1f}' "
            f"stroke='#ddd' stroke-width='1'/>"
        )
        parts.append(text(left - 8, y + 4, thousands(level), size=11, anchor="end"))
    parts.append(
        text(18, top + plot_height / 2, results["unit"], size=12, anchor="middle")
        .replace("<text ", f"<text transform='rotate(-90 18 {top + plot_height / 2:.1f})' ", 1)
    )
    group_width = plot_width / len(xs)
    bar_width = group_width * 0.8 / len(sides)
    for group, x in enumerate(xs):
        group_left = left + group * group_width + group_width * 0.1
        for position, side in enumerate(sides):
            if (side, x) not in value:
                continue
            measured = value[(side, x)]
            bar_height = plot_height * measured / top_value
            bar_left = group_left + position * bar_width
            colour = COLOURS[position % len(COLOURS)]
            parts.append(
                f"<rect x='{bar_left:.1f}' y='{top + plot_height - bar_height:.1f}' "
                f"width='{bar_width * 0.92:.1f}' height='{bar_height:.1f}' fill='{colour}'/>"
            )
            parts.append(
                text(
                    bar_left + bar_width * 0.46,
                    top + plot_height - bar_height - 5,
                    thousands(measured),
                    size=10,
                )
            )
        parts.append(
            text(left + group * group_width + group_width / 2, top + plot_height + 20, x)
        )
    parts.append(
        f"<line x1='{left}' y1='{top + plot_height}' x2='{width - right}' "
        f"y2='{top + plot_height}' stroke='#444' stroke-width='1'/>"
    )
    parts.append(text(left + plot_width / 2, height - 22, results["x_label"], size=12))
    return svg(width, height, parts)


def group_label(x, label):
    """'1 client', '64 clients': the label is written in the plural."""
    if x == 1 and label.endswith("s"):
        label = label[:-1]
    return f"{x} {label}"


def tail_position(percentile):
    """Where a percentile sits on the horizontal axis: 50 -> 1, 90 -> 2, 99 -> 3 and so
    on (the number of nines), so that the tail gets as much room as the body. The
    maximum (100) is drawn one step after 99.99."""
    if percentile >= 100:
        return math.log10(1 / (1 - 0.9999)) + 1
    return math.log10(1 / (1 - percentile / 100))


def latency_chart(results):
    """One panel per x value: each side's latency by percentile."""
    sides = results["sides"]
    latencies = results.get("latency") or []
    xs = sorted({entry["x"] for entry in latencies})
    panel_width, panel_height = 300, 300
    left, top, gap = 80, 70, 40
    width = left + len(xs) * (panel_width + gap) + 10
    height = top + panel_height + 70
    all_values = [
        value
        for entry in latencies
        for _, value in entry["percentiles"]
        if value > 0
    ]
    low = 10 ** math.floor(math.log10(min(all_values, default=1)))
    high = 10 ** math.ceil(math.log10(max(all_values, default=10)))
    if high <= low:
        high = low * 10
    span = math.log10(high) - math.log10(low)
    ticks = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0]
    position_max = tail_position(100.0)
    position_min = tail_position(50.0)

    def vertical(value):
        share = (math.log10(max(value, low)) - math.log10(low)) / span
        return top + panel_height - share * panel_height

    parts = [text(width / 2, 24, results["title"] + ": latency", size=15, weight="bold")]
    parts += legend(sides, left, 46)
    for panel, x in enumerate(xs):
        panel_left = left + panel * (panel_width + gap)

        def horizontal(percentile):
            share = (tail_position(percentile) - position_min) / (position_max - position_min)
            return panel_left + share * panel_width

        # Decades of latency: grid lines, labelled on the first panel.
        decade = low
        while decade <= high * 1.0001:
            y = vertical(decade)
            parts.append(
                f"<line x1='{panel_left}' y1='{y:.1f}' x2='{panel_left + panel_width}' "
                f"y2='{y:.1f}' stroke='#ddd' stroke-width='1'/>"
            )
            if panel == 0:
                label = f"{decade / 1000:g} ms" if decade >= 1000 else f"{decade:g} µs"
                parts.append(text(panel_left - 6, y + 4, label, size=11, anchor="end"))
            decade *= 10
        for tick in ticks:
            x_position = horizontal(tick)
            parts.append(
                f"<line x1='{x_position:.1f}' y1='{top}' x2='{x_position:.1f}' "
                f"y2='{top + panel_height}' stroke='#eee' stroke-width='1'/>"
            )
            label = "max" if tick >= 100 else f"{tick:g}"
            parts.append(text(x_position, top + panel_height + 16, label, size=10))
        parts.append(
            f"<rect x='{panel_left}' y='{top}' width='{panel_width}' height='{panel_height}' "
            f"fill='none' stroke='#444' stroke-width='1'/>"
        )
        parts.append(
            text(panel_left + panel_width / 2, top - 6, group_label(x, results["x_label"]),
                 size=12, weight="bold")
        )
        parts.append(
            text(panel_left + panel_width / 2, top + panel_height + 34, "percentile", size=11)
        )
        for position, side in enumerate(sides):
            points = [
                entry["percentiles"]
                for entry in latencies
                if entry["side"] == side and entry["x"] == x
            ]
            if not points:
                continue
            colour = COLOURS[position % len(COLOURS)]
            path = " ".join(
                f"{horizontal(percentile):.1f},{vertical(value):.1f}"
                for percentile, value in sorted(points[0])
                if percentile >= 50
            )
            parts.append(
                f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'/>"
            )
    return svg(width, height, parts)


def main(arguments):
    if not arguments or any(argument in ("-h", "--help") for argument in arguments):
        print(__doc__.strip())
        return 0 if arguments else 2
    for argument in arguments:
        path = Path(argument)
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError) as problem:
            print(f"chart.py: {path}: cannot be read: {problem}", file=sys.stderr)
            return 1
        required = ("name", "title", "x_label", "unit", "sides", "throughput")
        missing = [key for key in required if key not in results]
        if missing:
            print(f"chart.py: {path}: not a comparison result, it lacks {missing}", file=sys.stderr)
            return 1
        name = results["name"]
        written = [path.with_name(f"{name}-throughput.svg")]
        written[0].write_text(throughput_chart(results))
        if results.get("latency"):
            written.append(path.with_name(f"{name}-latency.svg"))
            written[-1].write_text(latency_chart(results))
        for output in written:
            print(f"chart.py: wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
