"""Prometheus text format helpers: parse samples, diff counters, histogram quantiles."""

import math
import re

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text, prefixes):
    """-> [(name, {label: value}, float)] for the metric names starting with one of prefixes."""
    out = []
    for line in text.splitlines():
        if not line or line[0] == "#" or not line.startswith(prefixes):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        out.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")), v))
    return out


def sum_by(samples, name, keys):
    """Sum the samples of metric `name` grouped by the tuple of label values `keys`."""
    out = {}
    for n, labels, v in samples:
        if n == name:
            k = tuple(labels.get(x, "") for x in keys)
            out[k] = out.get(k, 0.0) + v
    return out


def diff(after, before):
    return {k: after.get(k, 0.0) - before.get(k, 0.0)
            for k in set(after) | set(before) if after.get(k, 0.0) - before.get(k, 0.0) != 0}


def histogram(samples, name):
    """-> ({le: cumulative count}, count, sum) summed over all label sets of histogram `name`,
    or None when the series is absent."""
    buckets, count, total, seen = {}, 0.0, 0.0, False
    for n, labels, v in samples:
        if n == name + "_bucket":
            seen = True
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + v
        elif n == name + "_count":
            count += v
        elif n == name + "_sum":
            total += v
    return (buckets, count, total) if seen else None


def histogram_diff(after, before):
    if after is None:
        return None
    if before is None:
        return after
    b = {le: c - before[0].get(le, 0.0) for le, c in after[0].items()}
    return b, after[1] - before[1], after[2] - before[2]


def quantile(q, h):
    """Prometheus histogram_quantile (linear interpolation inside the bucket)."""
    if h is None:
        return None
    buckets = sorted(h[0].items())
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le  # above the highest finite bucket: its bound (a lower bound)
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return buckets[-1][0]


def fraction_le(h, bound):
    """Share of observations <= bound (exact when bound is a bucket boundary)."""
    if h is None or not h[0]:
        return None
    total = max(h[0].values())
    if total <= 0:
        return None
    best = 0.0
    for le, c in h[0].items():
        if le <= bound + 1e-12:
            best = max(best, c)
    return best / total
