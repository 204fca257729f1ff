"""Training-data exports as JSON Lines: `dpo`, `rm`, `ratings`, `sft`.

Items are read in batches of EXPORT_BATCH, each with its accepted labels, so memory stays flat
on large projects while the response streams. Consensus comes from the latest succeeded scoring
run when there is one (Dawid-Skene and friends) and from majority vote otherwise; a `min_tier`
filter recomputes majority vote over the labels that pass it (the run's consensus was built on
all labels, so reusing it would ignore the filter).

Gold items are not exported: they are the lab's own control items.

Past 400 lines on purpose: the four formats share one batched reader and one set of filters
(tier, confidence, AI marks), kept side by side so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import numpy as np
from django.utils import timezone

from contributors.models import ExpertProfile
from contributors.selectors import pseudonym_from_secret
from projects.models import (
    Dimension,
    DimensionKind,
    Item,
    Project,
    Submission,
    SubmissionStatus,
    TaskType,
)
from scoring import selectors as scoring_selectors
from scoring.engine.majority import majority_vote
from scoring.models import TIER_RANK, ScoringRun

EXPORT_BATCH = 1000
PREFERENCE_CLASSES = ("a", "b", "tie")
FORMATS_BY_TASK_TYPE: dict[str, frozenset[str]] = {
    TaskType.PAIRWISE: frozenset({"dpo", "rm", "ratings"}),
    TaskType.RANKING: frozenset({"dpo", "rm", "ratings"}),
    TaskType.RATING: frozenset({"ratings"}),
    TaskType.DEMONSTRATION: frozenset({"sft"}),
    TaskType.CORRECTION: frozenset({"sft"}),
}


@dataclass(frozen=True)
class ExportFilters:
    format: str
    min_confidence: float | None = None
    min_tier: str | None = None
    split: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "min_confidence": self.min_confidence,
            "min_tier": self.min_tier,
            "split": self.split,
        }


@dataclass
class Label:
    expert_id: int
    pseudonym: str
    answer: dict[str, Any]
    rubric_version: int
    is_ai: bool = False
    # The author's quality weight for training (scoring.engine.reward_model.quality_weight).
    weight: float | None = None


@dataclass
class ExportContext:
    project: Project
    filters: ExportFilters
    run: ScoringRun | None
    tiers: dict[int, str]
    pseudonyms: dict[int, str] = field(default_factory=dict)
    # Automatic judges' accounts: their labels leave only where the lab allows it.
    excluded: frozenset[int] = frozenset()
    judges: frozenset[int] = frozenset()
    weights: dict[int, float] = field(default_factory=dict)

    @property
    def uses_run_consensus(self) -> bool:
        return self.run is not None and self.filters.min_tier is None

    def passes_tier(self, expert_id: int) -> bool:
        if expert_id in self.excluded:
            return False
        if self.filters.min_tier is None:
            return True
        tier = self.tiers.get(expert_id)
        if tier is None or tier not in TIER_RANK:
            return False
        return TIER_RANK[tier] >= TIER_RANK[self.filters.min_tier]


def export_context(*, project: Project, filters: ExportFilters) -> ExportContext:
    run = scoring_selectors.latest_succeeded_run(project=project)
    judges = frozenset(ExpertProfile.objects.exclude(ai_judge="").values_list("user_id", flat=True))
    return ExportContext(
        project=project,
        filters=filters,
        run=run,
        tiers=scoring_selectors.contributor_tiers(run=run),
        excluded=frozenset() if project.ai_judge_counts else judges,
        judges=judges,
        weights=scoring_selectors.contributor_quality_weights(run=run),
    )


def _items(context: ExportContext) -> Iterator[list[Item]]:
    items = Item.objects.filter(project=context.project, is_gold=False).order_by("id")
    if context.filters.split:
        items = items.filter(split=context.filters.split)
    last_id = 0
    while True:
        batch = list(items.filter(id__gt=last_id)[:EXPORT_BATCH])
        if not batch:
            return
        yield batch
        last_id = batch[-1].id


def _labels(context: ExportContext, items: list[Item]) -> dict[int, list[Label]]:
    rows = (
        Submission.objects.filter(item__in=items, status=SubmissionStatus.ACCEPTED)
        .select_related("rubric_version", "expert")
        .order_by("id")
    )
    labels: dict[int, list[Label]] = defaultdict(list)
    lab_id = context.project.lab_id
    for row in rows:
        if not context.passes_tier(row.expert_id):
            continue
        pseudonym = context.pseudonyms.get(row.expert_id)
        if pseudonym is None:
            pseudonym = pseudonym_from_secret(row.expert.pseudonym_secret, lab_id)
            context.pseudonyms[row.expert_id] = pseudonym
        labels[row.item_id].append(
            Label(
                row.expert_id,
                pseudonym,
                row.answer,
                row.rubric_version.number,
                is_ai=row.expert_id in context.judges,
                weight=context.weights.get(row.expert_id),
            )
        )
    return labels


def _meta(item: Item, labels: list[Label], confidence: float) -> dict[str, Any]:
    return {
        "item_id": str(item.public_id),
        "external_id": item.external_id,
        "split": item.split,
        "confidence": round(float(confidence), 6),
        "n_labels": len(labels),
        # Labels written by an AI judge (present only where the lab lets them count).
        "ai_labels": sum(1 for label in labels if label.is_ai),
        "rubric_versions": sorted({label.rubric_version for label in labels}),
    }


def _label_row(name: str, value: Any, label: Label) -> dict[str, Any]:
    return {"contributor": name, "value": value, "is_ai": label.is_ai, "weight": label.weight}


@dataclass(frozen=True)
class Pair:
    chosen: int
    rejected: int
    confidence: float
    margin: float


def _pairwise_pairs(
    context: ExportContext, items: list[Item], labels: dict[int, list[Label]]
) -> dict[int, list[Pair]]:
    """The consensus preference of each pairwise item, as at most one (chosen, rejected) pair."""
    result: dict[int, list[Pair]] = {}
    index = {item.id: position for position, item in enumerate(items)}
    item_positions, classes = [], []
    for item in items:
        for label in labels.get(item.id, []):
            preference = label.answer.get("preference")
            if preference in PREFERENCE_CLASSES:
                item_positions.append(index[item.id])
                classes.append(PREFERENCE_CLASSES.index(preference))
    vote = majority_vote(
        np.array(item_positions, dtype=np.int64),
        np.array(classes, dtype=np.int64),
        n_items=len(items),
        n_classes=len(PREFERENCE_CLASSES),
    )
    run_consensus = (
        scoring_selectors.item_consensus(
            run=context.run, item_ids=[item.id for item in items], target="preference"
        )
        if context.uses_run_consensus and context.run is not None
        else {}
    )
    for item in items:
        position = index[item.id]
        n = int(vote.n[position])
        if n == 0:
            continue
        consensus = run_consensus.get(item.id)
        if consensus is not None:
            winner = str(consensus.value)
            confidence = consensus.confidence
        else:
            winner = PREFERENCE_CLASSES[int(vote.labels[position])]
            confidence = float(vote.confidence[position])
        if winner == "tie":
            continue
        chosen, rejected = (0, 1) if winner == "a" else (1, 0)
        votes_for = int(vote.counts[position][chosen])
        votes_against = int(vote.counts[position][rejected])
        result[item.id] = [Pair(chosen, rejected, confidence, (votes_for - votes_against) / n)]
    return result


def _ranking_pairs(
    context: ExportContext, items: list[Item], labels: dict[int, list[Label]]
) -> dict[int, list[Pair]]:
    """Every ordered pair of the consensus ranking (Borda: mean position, best first)."""
    result: dict[int, list[Pair]] = {}
    run_consensus = (
        scoring_selectors.item_consensus(
            run=context.run, item_ids=[item.id for item in items], target="ranking"
        )
        if context.uses_run_consensus and context.run is not None
        else {}
    )
    for item in items:
        rankings = [
            label.answer["ranking"]
            for label in labels.get(item.id, [])
            if isinstance(label.answer.get("ranking"), list)
        ]
        if not rankings:
            continue
        k = len(item.responses)
        positions = np.zeros((len(rankings), k))
        for row, ranking in enumerate(rankings):
            positions[row, ranking] = np.arange(k)
        consensus = run_consensus.get(item.id)
        order = (
            list(consensus.value)
            if consensus is not None
            else list(np.lexsort((np.arange(k), positions.mean(axis=0))))
        )
        pairs = []
        for better_rank, better in enumerate(order):
            for worse in order[better_rank + 1 :]:
                agree = float(np.mean(positions[:, better] < positions[:, worse]))
                pairs.append(Pair(int(better), int(worse), agree, 2 * agree - 1))
        result[item.id] = pairs
    return result


def _passes_confidence(context: ExportContext, confidence: float) -> bool:
    threshold = context.filters.min_confidence
    return threshold is None or confidence >= threshold


def _pair_records(
    context: ExportContext, items: list[Item], labels: dict[int, list[Label]]
) -> Iterator[dict[str, Any]]:
    if context.project.task_type == TaskType.PAIRWISE:
        pairs_by_item = _pairwise_pairs(context, items, labels)
    else:
        pairs_by_item = _ranking_pairs(context, items, labels)
    with_margin = context.filters.format == "rm"
    for item in items:
        for pair in pairs_by_item.get(item.id, []):
            if not _passes_confidence(context, pair.confidence):
                continue
            record: dict[str, Any] = {
                "prompt": item.prompt,
                "chosen": item.responses[pair.chosen],
                "rejected": item.responses[pair.rejected],
            }
            if with_margin:
                record["margin"] = round(pair.margin, 6)
                record["confidence"] = round(pair.confidence, 6)
            record["meta"] = _meta(item, labels[item.id], pair.confidence)
            yield record


def _dimension_consensus(dimension: Dimension | None, values: list[Any]) -> tuple[Any, float]:
    """Likert: the mean (confidence: 1 - normalised spread); categorical: the majority share."""
    numeric = [value for value in values if isinstance(value, int | float)]
    if dimension is not None and dimension.kind == DimensionKind.LIKERT and numeric:
        mean = float(np.mean(numeric))
        span = max((dimension.max_value or 1) - (dimension.min_value or 0), 1)
        return round(mean, 6), round(1.0 - float(np.std(numeric)) / span, 6)
    counts: dict[Any, int] = defaultdict(int)
    for value in values:
        counts[json.dumps(value)] += 1
    if not counts:
        return None, 0.0
    best = max(sorted(counts), key=lambda key: counts[key])
    return json.loads(best), round(counts[best] / len(values), 6)


def _rating_records(
    context: ExportContext, items: list[Item], labels: dict[int, list[Label]]
) -> Iterator[dict[str, Any]]:
    rubric = context.project.rubric_versions.order_by("-number").first()
    dimensions = {d.key: d for d in rubric.dimensions.all()} if rubric else {}
    per_response = context.project.task_type in (TaskType.PAIRWISE, TaskType.RANKING)
    # The run's quality-weighted likert consensus (mean and spread), where it has one.
    weighted = (
        scoring_selectors.likert_consensus(run=context.run, item_ids=[item.id for item in items])
        if context.uses_run_consensus and context.run is not None
        else {}
    )
    for item in items:
        item_labels = labels.get(item.id, [])
        if not item_labels:
            continue
        keys: list[str] = list(dimensions)
        for label in item_labels:
            keys += [key for key in label.answer.get("answers", {}) if key not in keys]
        dimension_rows: dict[str, Any] = {}
        confidences = []
        for key in keys:
            raw = [
                (label.pseudonym, label.answer["answers"][key], label)
                for label in item_labels
                if key in label.answer.get("answers", {})
            ]
            if not raw:
                continue
            if per_response:
                consensus_values, response_confidences = [], []
                for response in range(len(item.responses)):
                    value, confidence = _dimension_consensus(
                        dimensions.get(key),
                        [values[response] for _, values, _ in raw if len(values) > response],
                    )
                    consensus_values.append(value)
                    response_confidences.append(confidence)
                consensus: Any = consensus_values
                confidence = min(response_confidences)
            else:
                consensus, confidence = _dimension_consensus(
                    dimensions.get(key), [value for _, value, _ in raw]
                )
            row: dict[str, Any] = {"consensus": consensus, "confidence": confidence}
            run_row = weighted.get((item.id, key))
            if run_row is not None:
                # Quality-weighted: each label weighs its author's reliability on this
                # dimension (docs/SCORING.md section 3); the spread says how sure it is.
                row["consensus"] = (
                    [entry["mean"] for entry in run_row.value]
                    if isinstance(run_row.value, list)
                    else run_row.value["mean"]
                )
                row["spread"] = (
                    [entry["spread"] for entry in run_row.value]
                    if isinstance(run_row.value, list)
                    else run_row.value["spread"]
                )
                row["confidence"] = confidence = round(float(run_row.confidence), 6)
                row["weighted"] = True
            confidences.append(confidence)
            dimension_rows[key] = {
                **row,
                "labels": [_label_row(name, value, label) for name, value, label in raw],
            }
        record: dict[str, Any] = {
            "prompt": item.prompt,
            "responses": item.responses,
            "dimensions": dimension_rows,
        }
        if context.project.task_type == TaskType.PAIRWISE:
            preferences = [
                (label.pseudonym, label.answer.get("preference"), label) for label in item_labels
            ]
            value, confidence = _dimension_consensus(None, [p for _, p, _ in preferences])
            confidences.append(confidence)
            record["preference"] = {
                "consensus": value,
                "confidence": confidence,
                "labels": [_label_row(name, p, label) for name, p, label in preferences],
            }
        if context.project.task_type == TaskType.RANKING:
            record["ranking"] = {
                "labels": [
                    _label_row(label.pseudonym, label.answer.get("ranking"), label)
                    for label in item_labels
                ]
            }
        overall = min(confidences) if confidences else 0.0
        if not _passes_confidence(context, overall):
            continue
        record["meta"] = _meta(item, item_labels, overall)
        yield record


def _sft_records(
    context: ExportContext, items: list[Item], labels: dict[int, list[Label]]
) -> Iterator[dict[str, Any]]:
    is_correction = context.project.task_type == TaskType.CORRECTION
    for item in items:
        for label in labels.get(item.id, []):
            text = label.answer.get("text")
            if not isinstance(text, str):
                continue
            meta = _meta(item, [label], 1.0)
            meta["contributor"] = label.pseudonym
            meta["is_ai"] = label.is_ai
            if is_correction:
                # The training triple: the input (prompt), the model's output and the fix.
                meta["original"] = item.responses[0] if item.responses else ""
                if item.context.get("schema_errors"):
                    meta["schema_errors"] = item.context["schema_errors"]
            yield {"prompt": item.prompt, "completion": text, "meta": meta}


def export_item_count(context: ExportContext) -> int:
    """How many items an export scans (its progress's denominator)."""
    items = Item.objects.filter(project=context.project, is_gold=False)
    if context.filters.split:
        items = items.filter(split=context.filters.split)
    return items.count()


def export_records(
    context: ExportContext, progress: Callable[[int], None] | None = None
) -> Iterator[dict[str, Any]]:
    """The export's records; `progress` is told the items scanned so far after each batch."""
    builder = {
        "dpo": _pair_records,
        "rm": _pair_records,
        "ratings": _rating_records,
        "sft": _sft_records,
    }[context.filters.format]
    scanned = 0
    for items in _items(context):
        yield from builder(context, items, _labels(context, items))
        scanned += len(items)
        if progress is not None:
            progress(scanned)


def export_lines(
    context: ExportContext, progress: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    for record in export_records(context, progress):
        yield (json.dumps(record, ensure_ascii=False) + "\n").encode()


def export_manifest(
    context: ExportContext,
    generated_at: datetime | None = None,
    sink: IO[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """What a training run cites: counts, rubric versions, the scoring run, and a content hash.
    With a `sink`, the exported bytes are written there in the same pass (export jobs)."""
    digest = hashlib.sha256()
    records = 0
    items: set[str] = set()
    labels = 0
    ai_labels = 0
    versions: set[int] = set()
    for line in export_lines(context, progress):
        digest.update(line)
        if sink is not None:
            sink.write(line)
        records += 1
        meta = json.loads(line)["meta"]
        if context.filters.format == "sft":
            labels += 1  # one record per demonstration or correction
        elif meta["item_id"] not in items:
            labels += meta["n_labels"]
        if context.filters.format == "sft" or meta["item_id"] not in items:
            ai_labels += meta.get("ai_labels", 0)
        items.add(meta["item_id"])
        versions.update(meta["rubric_versions"])
    return {
        "project": context.project.id,
        "filters": context.filters.as_dict(),
        "consensus": "scoring_run" if context.uses_run_consensus else "majority_vote",
        "scoring_run": context.run.id if context.run is not None else None,
        "rubric_versions": sorted(versions),
        "counts": {
            "records": records,
            "items": len(items),
            "labels": labels,
            "ai_labels": ai_labels,
        },
        # Whether the project's AI judge's labels count (and so may be in this export).
        "ai_labels_included": bool(context.project.ai_judge_counts),
        "sha256": digest.hexdigest(),
        "generated_at": (generated_at or timezone.now()).isoformat(),
    }
