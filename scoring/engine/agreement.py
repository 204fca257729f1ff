"""Agreement (docs/SCORING.md section 2): per-contributor leave-one-out agreement, and
Krippendorff's alpha per dimension (nominal, ordinal, interval)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class AgreementRates:
    rate: NDArray[np.float64]  # per contributor; NaN where n == 0
    n: NDArray[np.int64]  # items that counted (at least 2 other labels, a clear consensus)


def leave_one_out_agreement(
    item_index: NDArray[np.integer],
    worker_index: NDArray[np.integer],
    value: NDArray[np.number],
    *,
    n_items: int,
    n_workers: int,
    n_classes: int | None = None,
    tolerance: float = 0.0,
) -> AgreementRates:
    """How often each label agrees with the consensus of the *other* labels of its item.

    Categorical (n_classes given): the others' majority class, exact match; an item whose
    others tie is skipped. Ordinal / likert (n_classes None): the others' median, agreement
    within `tolerance`. Only items with at least 2 other labels count.
    """
    items = np.asarray(item_index, dtype=np.int64)
    workers = np.asarray(worker_index, dtype=np.int64)
    values = np.asarray(value)
    per_item = np.bincount(items, minlength=n_items)
    others = per_item[items] - 1
    eligible = others >= 2
    agree = np.zeros(items.size, dtype=bool)
    counted = np.zeros(items.size, dtype=bool)
    if n_classes is not None:
        labels = values.astype(np.int64)
        counts = np.bincount(items * n_classes + labels, minlength=n_items * n_classes).reshape(
            n_items, n_classes
        )
        rest = counts[items].copy()
        rest[np.arange(items.size), labels] -= 1
        top = rest.max(axis=1)
        unique_top = (rest == top[:, None]).sum(axis=1) == 1
        counted = eligible & unique_top
        agree = counted & (rest.argmax(axis=1) == labels)
    else:
        order = np.argsort(items, kind="stable")
        sorted_items = items[order]
        starts = np.searchsorted(sorted_items, np.arange(n_items))
        for position in np.flatnonzero(eligible):
            item = items[position]
            members = order[starts[item] : starts[item] + per_item[item]]
            rest_values = values[members[members != position]]
            counted[position] = True
            agree[position] = (
                abs(float(values[position]) - float(np.median(rest_values))) <= tolerance
            )
    n = np.bincount(workers[counted], minlength=n_workers)
    hits = np.bincount(workers[agree], minlength=n_workers)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, hits / np.maximum(n, 1), np.nan)
    return AgreementRates(rate=rate, n=n.astype(np.int64))


def krippendorff_alpha(reliability: NDArray[np.float64], level: str = "nominal") -> float:
    """Krippendorff's alpha from a raters x units matrix (NaN = missing).

    Built from the coincidence matrix of pairable values, with the nominal, ordinal or interval
    difference function, as in Krippendorff (2011) and the `krippendorff` package.
    """
    data = np.asarray(reliability, dtype=np.float64)
    values = np.unique(data[~np.isnan(data)])
    if values.size < 2:
        return float("nan")
    k = values.size
    n_units = data.shape[1]
    present = ~np.isnan(data)
    unit_of = np.broadcast_to(np.arange(n_units), data.shape)[present]
    value_of = np.searchsorted(values, data[present])
    # counts[u, c]: how many raters gave value c to unit u; only pairable units (m >= 2) count.
    counts = np.bincount(unit_of * k + value_of, minlength=n_units * k).reshape(n_units, k)
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts = counts[pairable].astype(np.float64)
    weights = 1.0 / (m[pairable] - 1.0)
    # Sum over units of (n_u n_u^T - diag(n_u)) / (m_u - 1), as two matrix products.
    coincidence = (counts * weights[:, None]).T @ counts - np.diag(weights @ counts)
    marginals = coincidence.sum(axis=1)
    total = marginals.sum()
    if level == "nominal":
        distance = 1.0 - np.eye(k)
    elif level == "interval":
        distance = (values[:, None] - values[None, :]) ** 2
    elif level == "ordinal":
        cumulative = np.cumsum(marginals)
        # delta(c, k) = (sum of n_g for g from c to k  -  (n_c + n_k) / 2) ** 2
        upper = cumulative[:, None] - cumulative[None, :] + marginals[None, :]
        lower = cumulative[None, :] - cumulative[:, None] + marginals[:, None]
        between = np.where(np.arange(k)[:, None] <= np.arange(k)[None, :], lower, upper)
        distance = (between - (marginals[:, None] + marginals[None, :]) / 2.0) ** 2
    else:
        raise ValueError(f"unknown level of measurement: {level}")
    observed = (coincidence * distance).sum()
    expected = (np.outer(marginals, marginals) * distance).sum() / (total - 1)
    if expected == 0:
        return float("nan")
    return float(1.0 - observed / expected)
