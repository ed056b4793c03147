"""tools/render_dashboard.py evaluates PromQL as Prometheus would, on hand-made scrapes."""

from __future__ import annotations

import json
import math

import pytest

from tools.render_dashboard import (
    DASHBOARD,
    Evaluator,
    Scrape,
    bucket_quantile,
    evaluate,
    legend,
    parse,
    parse_scrape,
    query_range,
    substitute,
    variables,
)

SENT = 'smsqueue_messages_total{provider="%s",outcome="%s"} %s'


def counters(t: float, values: dict[tuple[str, str], float]) -> Scrape:
    """One scrape of smsqueue_messages_total with the given (provider, outcome) values."""
    lines = ["# TYPE smsqueue_messages counter"]
    lines += [SENT % (p, o, v) for (p, o), v in values.items()]
    return parse_scrape(t, "\n".join(lines) + "\n")


def histogram(t: float, buckets: dict[str, float], provider: str = "wooxy") -> Scrape:
    """One scrape of smsqueue_provider_latency_seconds with cumulative ``buckets`` (le -> n)."""
    lines = ["# TYPE smsqueue_provider_latency_seconds histogram"]
    lines += [
        f'smsqueue_provider_latency_seconds_bucket{{provider="{provider}",le="{le}"}} {n}'
        for le, n in buckets.items()
    ]
    lines += [
        f'smsqueue_provider_latency_seconds_count{{provider="{provider}"}} {buckets["+Inf"]}',
        f'smsqueue_provider_latency_seconds_sum{{provider="{provider}"}} 1.0',
    ]
    return parse_scrape(t, "\n".join(lines) + "\n")


def at(scrapes: list[Scrape], expr: str, t: float) -> dict[str, float]:
    """``expr`` at ``t`` over ``scrapes``, keyed by its series' label values joined by ' '."""
    value = Evaluator(scrapes).at(parse(expr), t)
    assert not isinstance(value, float)
    return {" ".join(v for _, v in labels): x for labels, x in value.items()}


def test_rate_extrapolates_to_the_window_edge_as_prometheus() -> None:
    """10/s for 3 s seen in a 4 s window is extrapolated over the whole window: 10/s."""
    scrapes = [counters(t, {("wooxy", "sent"): 100 + 10 * (t - 1)}) for t in (1, 2, 3, 4)]
    got = at(scrapes, "rate(smsqueue_messages_total[4s])", 4)
    assert got == {"sent wooxy": pytest.approx(10.0)}


def test_rate_does_not_extrapolate_a_counter_below_zero() -> None:
    """A counter that starts at 0 is not extrapolated back before it was 0: 30 in 4 s."""
    scrapes = [counters(t, {("voip", "sent"): 10 * t}) for t in (0, 1, 2, 3)]
    assert at(scrapes, "increase(smsqueue_messages_total[4s])", 3) == {
        "sent voip": pytest.approx(30.0)
    }
    assert at(scrapes, "rate(smsqueue_messages_total[4s])", 3) == {"sent voip": pytest.approx(7.5)}


def test_rate_makes_good_a_counter_reset() -> None:
    """100, 110, then a reset to 5, then 15: an increase of 10 + 5 + 10, not a negative one."""
    scrapes = [
        counters(t, {("wooxy", "sent"): v})
        for t, v in zip((1, 2, 3, 4), (100, 110, 5, 15), strict=True)
    ]
    got = at(scrapes, "increase(smsqueue_messages_total[4s])", 4)
    assert got == {"sent wooxy": pytest.approx(25.0 * 4 / 3)}  # 3 s seen, 4 s window


def test_rate_needs_two_samples_in_the_window() -> None:
    """A series with one sample in the window has no rate, as in Prometheus."""
    scrapes = [counters(t, {("wooxy", "sent"): 10 * t}) for t in (1, 2, 3)]
    assert at(scrapes, "rate(smsqueue_messages_total[1s])", 3) == {}


def test_sum_by_keeps_only_the_by_labels() -> None:
    """sum by (provider) adds every outcome of a provider; sum without by adds everything."""
    values = {("wooxy", "sent"): 0.0, ("wooxy", "failed"): 0.0, ("voip", "sent"): 0.0}
    scrapes = [
        counters(t, {k: v + t * (i + 1) for i, (k, v) in enumerate(values.items())})
        for t in (1, 2, 3, 4, 5)
    ]
    expr = "sum by (provider) (rate(smsqueue_messages_total[4s]))"
    assert at(scrapes, expr, 5) == {"wooxy": pytest.approx(3.0), "voip": pytest.approx(3.0)}
    assert at(scrapes, "sum(rate(smsqueue_messages_total[4s]))", 5) == {"": pytest.approx(6.0)}


def test_selectors_match_labels_and_arithmetic_applies_to_each_series() -> None:
    """A label matcher keeps the matching series; '* 60' scales each; vector() is one series."""
    values = {("wooxy", "sent"): 7.0, ("wooxy", "failed"): 1.0, ("voip", "sent"): 2.0}
    scrapes = [counters(1, values)]
    assert at(scrapes, 'smsqueue_messages_total{outcome="sent"} * 60', 1) == {
        "sent wooxy": 420.0,
        "sent voip": 120.0,
    }
    assert at(scrapes, 'smsqueue_messages_total{outcome!="sent",provider=~"woo.*"}', 1) == {
        "failed wooxy": 1.0
    }
    assert at(scrapes, "vector(10)", 1) == {"": 10.0}


def test_an_instant_selector_reads_the_latest_scrape_only() -> None:
    """A series missing from the latest scrape is stale: it is not carried over."""
    scrapes = [counters(1, {("wooxy", "sent"): 1}), counters(2, {("voip", "sent"): 2})]
    assert at(scrapes, "smsqueue_messages_total", 2) == {"sent voip": 2.0}
    assert at(scrapes, "smsqueue_messages_total", 1.5) == {"sent wooxy": 1.0}


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    """Half of 20 observations falls in (0.1, 0.5], 5 of its 10: p50 is 0.3; p99 is 0.98."""
    buckets = [(0.1, 5.0), (0.5, 15.0), (1.0, 20.0), (math.inf, 20.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.3)
    assert bucket_quantile(0.99, buckets) == pytest.approx(0.98)
    assert bucket_quantile(0.01, buckets) == pytest.approx(0.004)  # first bucket from 0


def test_histogram_quantile_edge_cases_follow_prometheus() -> None:
    """Above the last finite bound: that bound; no observations or no +Inf: NaN; q out of range."""
    assert bucket_quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))
    assert math.isnan(bucket_quantile(0.5, [(0.1, 1.0), (0.5, 2.0)]))
    assert bucket_quantile(-0.1, [(0.1, 1.0), (math.inf, 1.0)]) == -math.inf
    assert bucket_quantile(1.1, [(0.1, 1.0), (math.inf, 1.0)]) == math.inf


def test_histogram_quantile_over_rate_of_scraped_buckets() -> None:
    """The dashboard's latency query: p50 of the observations made within the window only."""
    before = {"0.01": 100.0, "0.025": 100.0, "0.05": 100.0, "+Inf": 100.0}
    after = {"0.01": 100.0, "0.025": 110.0, "0.05": 120.0, "+Inf": 120.0}  # 20 new ones
    scrapes = [histogram(1, before), histogram(2, before), histogram(3, after)]
    expr = (
        "histogram_quantile(0.5, sum by (provider, le) "
        "(rate(smsqueue_provider_latency_seconds_bucket[3s])))"
    )
    # 10 of the 20 new ones in (0.01, 0.025], 10 in (0.025, 0.05]: the median is 0.025.
    assert at(scrapes, expr, 3) == {"wooxy": pytest.approx(0.025)}


def test_grafana_variables_and_legends() -> None:
    """$__rate_interval and the board's own variables are substituted; legends fill {{label}}."""
    board = json.loads(DASHBOARD.read_text())
    names = variables(board, interval=1.0, span=60.0)
    assert names["__rate_interval"] == "4000ms" and names["__range"] == "60000ms"
    assert variables(board, interval=1.0, span=60.0, rate_interval=10)["__rate_interval"] == (
        "10000ms"
    )
    assert substitute("vector($wooxy_cap) x[${__range}]", names) == "vector(10) x[60000ms]"
    assert legend("{{provider}} p95", (("le", "1"), ("provider", "voip"))) == "voip p95"
    assert legend("", (("provider", "voip"),)) == '{provider="voip"}'


def test_every_dashboard_query_is_in_the_subset() -> None:
    """Every query of the dashboard parses and evaluates: one outside the subset fails here."""
    board = json.loads(DASHBOARD.read_text())
    scrapes = [
        counters(1, {("wooxy", "sent"): 1}),
        counters(2, {("wooxy", "sent"): 3}),
    ]
    panels = evaluate(board, scrapes, interval=1.0)
    assert len(panels) == len(board["panels"])
    sent = next(p for p in panels if p.title.startswith("Throughput"))
    assert [name for name, _ in sent.series] == ["wooxy"]


def test_the_parser_refuses_what_it_does_not_know() -> None:
    """A function outside the subset, or a bare range vector, is an error, not a wrong picture."""
    with pytest.raises(ValueError, match="not in the subset"):
        parse("avg_over_time(smsqueue_due[5m])")
    with pytest.raises(ValueError, match="range vector"):
        query_range(Evaluator([]), "smsqueue_due[5m]", [1.0])
