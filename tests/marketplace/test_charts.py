"""Server-side SVG charts: escaped text, no data handled, one mark per value."""

from __future__ import annotations

from marketplace.charts import bar_chart, line_chart


def test_bar_chart_escapes_labels_and_draws_one_bar_per_value() -> None:
    svg = str(bar_chart(["<b>", "ok"], [3.0, 1.0], title="t<script>"))
    assert svg.count("<rect") == 2
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "<script>" not in svg


def test_empty_series_say_so() -> None:
    assert "no data yet" in str(bar_chart(["a", "b"], [0.0, 0.0], title="x"))
    assert "no data yet" in str(line_chart(["d1"], [None], title="x"))
    assert "no data yet" in str(line_chart(["d1", "d2"], [0.0, 0.0], title="x"))


def test_line_chart_skips_gaps() -> None:
    svg = str(line_chart(["d1", "d2", "d3"], [1.0, None, 2.0], title="cost"))
    assert svg.count("<circle") == 2 and "<polyline" in svg
