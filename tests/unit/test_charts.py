"""The overview's SVG plots (charts.py): escaped, no script and no inline style, a tooltip per
bar, labels that never overlap, and the figures as a table."""

import re

from splynx_ippay import charts
from splynx_ippay.charts import Series


def test_labels_and_names_are_escaped():
    svg = str(charts.bars("<b>Title</b>", ["<script>x</script>"],
                          [Series("a&b", [3]), Series('"q"', [1])]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>" not in svg and "a&amp;b" in svg


def test_no_script_and_no_inline_style():
    for svg in (charts.bars("t", ["a", "b"], [Series("s", [1, 2])]),
                charts.line("t", ["a", "b"], Series("s", [1, 2])),
                charts.hbars("t", ["a reason"], [Series("hard", [4]), Series("soft", [1])])):
        assert "<script" not in svg and "style=" not in svg
        assert 'role="img"' in svg and "<details>" in svg


def test_each_bar_says_what_it_is_and_stacks_add_up():
    svg = str(charts.bars("Collected", ["Jan 01"], [Series("portal", [2.5]),
                                                   Series("automatic", [7.5])],
                          fmt=lambda v: f"${v:.2f}"))
    assert "<title>Jan 01, portal: $2.50</title>" in svg
    assert "<title>Jan 01, automatic: $7.50</title>" in svg
    heights = [float(h) for h in re.findall(r'<rect class="series-\d" x="[^"]+" y="[^"]+" '
                                            r'width="[^"]+" height="([^"]+)"><title>Jan', svg)]
    assert len(heights) == 2 and abs(heights[1] / heights[0] - 3) < 0.01


def test_a_long_axis_shows_labels_that_fit():
    labels = [f"Day {n:02d}" for n in range(90)]
    svg = str(charts.bars("t", labels, [Series("s", list(range(90)))]))
    shown = re.findall(r'<text class="axis" x="[^"]+" y="[^"]+" text-anchor="middle">([^<]+)',
                       svg)
    assert shown[0] == "Day 00" and 4 <= len(shown) <= 10
    positions = [float(x) for x in re.findall(r'x="([\d.]+)" y="[^"]+" text-anchor="middle"', svg)]
    gaps = [b - a for a, b in zip(positions, positions[1:])]
    assert min(gaps) >= len("Day 00") * charts.FONT * charts.CHAR_WIDTH


def test_the_table_lists_what_has_a_value():
    svg = str(charts.bars("t", ["quiet", "busy"], [Series("s", [0, 5])]))
    table = svg.split("<table", 1)[1]
    assert "busy" in table and "quiet" not in table
    empty = str(charts.bars("t", ["a"], [Series("s", [0])]))
    assert "None</td>" in empty


def test_an_empty_plot_still_draws_its_axes():
    svg = str(charts.line("Success", [], Series("s", [])))
    assert svg.count('class="gridline"') == 3
