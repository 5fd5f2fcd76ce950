"""Reading `/metrics` as Prometheus does: with its text parser, sample by sample."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when it does not exist yet (a counter not moved so far)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every Homeport `_total`, `_count` and `_bucket` sample that changed, by how much."""
    keys = set(before) | set(after)
    return {
        key: after.get(key, 0.0) - before.get(key, 0.0)
        for key in keys
        if key[0].startswith("homeport_")
        and key[0].endswith(("_total", "_count", "_bucket"))
        and after.get(key, 0.0) != before.get(key, 0.0)
    }
