"""The bad-case loop closed (issue 18): a promotion (a new rubric dimension or new gold items)
re-queues the items that produced the bad cases, and a sample of similar ones, for new labels
under the rubric version in force; once every item has them a scoring run re-scores the
project, and the lab compares each dimension before and after, with n and intervals.

"Similar" is measured on text: the cosine similarity of the built-in hashed word, word-bigram
and character-trigram features (scoring's reward-model featuriser) of an item's prompt and
responses to its nearest affected item, among the project's labelled non-gold items (the
latest SIMILAR_POOL of them); the most similar come first, ties by id. Text similarity is the
one signal every item has; lab-supplied feature vectors describe responses, not prompts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from contributors.models import ExpertProfile
from marketplace.errors import DomainError
from marketplace.models import User
from projects import evolution
from projects.models import (
    Item,
    Project,
    RelabelBatch,
    RelabelBatchItem,
    RelabelBatchStatus,
    RelabelReason,
    RubricVersion,
    Submission,
    SubmissionStatus,
)
from scoring.engine.reward_model import featurise
from scoring.models import ScoringRun
from scoring.services.runs import scoring_run_create

SIMILAR_POOL = 5000
MAX_SIMILAR = 200
MAX_AFFECTED = 500


def counted_submissions(project: Project) -> QuerySet[Submission]:
    """Labels that count: accepted ones (a quality-stopped expert's labels were discounted to
    rejected), and an AI judge's only where the lab lets them count."""
    rows = Submission.objects.filter(project=project, status=SubmissionStatus.ACCEPTED)
    if not project.ai_judge_counts:
        rows = rows.exclude(
            expert_id__in=ExpertProfile.objects.exclude(ai_judge="").values("user_id")
        )
    return rows


def _text(item: Item) -> str:
    return "\n".join([item.prompt, *[str(response) for response in item.responses]])


def similar_items(
    *, project: Project, affected: list[Item], count: int
) -> list[tuple[Item, float]]:
    """The `count` labelled non-gold items most similar to any affected item (see the module
    docstring), with their similarity."""
    if count <= 0 or not affected:
        return []
    pool = list(
        Item.objects.filter(project=project, is_gold=False, labels_count__gt=0)
        .exclude(pk__in=[item.pk for item in affected])
        .order_by("-id")[:SIMILAR_POOL]
    )
    if not pool:
        return []
    anchors = featurise([_text(item) for item in affected])
    candidates = featurise([_text(item) for item in pool])
    nearest = (candidates @ anchors.T).max(axis=1)
    ranked = sorted(range(len(pool)), key=lambda index: (-nearest[index], pool[index].pk))
    return [(pool[index], round(float(nearest[index]), 4)) for index in ranked[:count]]


def affected_bad_case_items(*, project: Project, public_ids: list[str] | None) -> list[Item]:
    """The items a dimension promotion is about: those named, or every bad-case item."""
    items = Item.objects.filter(project=project, is_gold=False)
    if public_ids is None:
        return list(items.filter(context__bad_case=True).order_by("id")[:MAX_AFFECTED])
    found = {
        str(item.public_id): item
        for item in items.filter(public_id__in=evolution.uuids(list(public_ids)))
    }
    missing = [
        {"index": index, "field": "items", "message": "no such (non-gold) item here"}
        for index, public_id in enumerate(public_ids)
        if str(public_id) not in found
    ]
    if missing:
        raise DomainError(
            "Some items are not in this project.", code="invalid_items", details=missing
        )
    return sorted(found.values(), key=lambda item: item.pk)


def relabel_batch_create(
    *,
    project: Project,
    promotion: str,
    dimension: str,
    rubric_version: RubricVersion,
    affected: list[Item],
    similar: list[tuple[Item, float]],
    labels_per_item: int,
    created_by: User | None,
) -> RelabelBatch | None:
    """Record the batch and re-open its items for `labels_per_item` more labels each. Runs in
    the promotion's transaction, so a promotion never exists without its re-queue."""
    entries = [(item, RelabelReason.AFFECTED, 1.0) for item in affected] + [
        (item, RelabelReason.SIMILAR, score) for item, score in similar
    ]
    if not entries:
        return None
    with transaction.atomic():
        batch = RelabelBatch.objects.create(
            project=project,
            promotion=promotion,
            dimension=dimension,
            rubric_version=rubric_version,
            labels_per_item=labels_per_item,
            created_by=created_by,
        )
        RelabelBatchItem.objects.bulk_create(
            RelabelBatchItem(batch=batch, item=item, reason=reason, similarity=score)
            for item, reason, score in entries
        )
        # Routing writes these counters under the item's row lock; take the same locks, in id
        # order like every other multi-item writer, so a concurrent claim or submit waits. A
        # dimension promotion already holds the project's row (its new rubric version): project
        # then items is the claim's own order, so the two cannot deadlock.
        for item in (
            Item.objects.select_for_update()
            .filter(pk__in=[item.pk for item, _, _ in entries])
            .order_by("pk")
        ):
            # Experts who labelled an item never get it again (blind redundancy), so the new
            # labels come from other experts, under the version served from now on.
            item.target_labels = max(item.target_labels, item.assigned_count) + labels_per_item
            item.is_open = item.assigned_count < item.target_labels
            item.save(update_fields=["target_labels", "is_open"])
    return batch


@dataclass(frozen=True)
class BatchProgress:
    needed: int
    done: int
    items_done: int
    items: int
    per_item: dict[int, int]

    @property
    def is_complete(self) -> bool:
        return self.items > 0 and self.items_done == self.items


def _progress(
    batches: list[RelabelBatch], entries: list[RelabelBatchItem]
) -> dict[int, BatchProgress]:
    """Each batch's new labels per item: counted labels submitted since the batch began under
    its rubric version or a later one. One query for any number of batches of one project."""
    if not batches:
        return {}
    by_batch: dict[int, list[int]] = defaultdict(list)
    for entry in entries:
        by_batch[entry.batch_id].append(entry.item_id)
    labels: dict[int, list[tuple[Any, int]]] = defaultdict(list)
    for item_id, submitted_at, number in (
        counted_submissions(batches[0].project)
        .filter(item_id__in={entry.item_id for entry in entries})
        .values_list("item_id", "submitted_at", "rubric_version__number")
    ):
        labels[item_id].append((submitted_at, number))
    result = {}
    for batch in batches:
        need, item_ids = batch.labels_per_item, by_batch.get(batch.pk, [])
        per_item = {
            item_id: sum(
                1
                for submitted_at, number in labels.get(item_id, [])
                if submitted_at >= batch.created_at and number >= batch.rubric_version.number
            )
            for item_id in item_ids
        }
        result[batch.pk] = BatchProgress(
            needed=need * len(item_ids),
            done=sum(min(count, need) for count in per_item.values()),
            items_done=sum(count >= need for count in per_item.values()),
            items=len(item_ids),
            per_item=per_item,
        )
    return result


def relabel_batch_progress(*, batch: RelabelBatch) -> BatchProgress:
    return _progress([batch], list(batch.entries.all()))[batch.pk]


def relabel_batch_advance(*, batch_id: int) -> RelabelBatch:
    """relabelling -> scoring once every item has its new labels: start a scoring run. Safe to
    call again (compare-and-swap on the status; the run is created once)."""
    batch = RelabelBatch.objects.select_related("project", "rubric_version").get(pk=batch_id)
    if batch.status != RelabelBatchStatus.RELABELLING:
        return batch
    if not relabel_batch_progress(batch=batch).is_complete:
        return batch
    with transaction.atomic():
        swapped = RelabelBatch.objects.filter(
            pk=batch.pk, status=RelabelBatchStatus.RELABELLING
        ).update(status=RelabelBatchStatus.SCORING, relabelled_at=timezone.now())
        if swapped:
            # A run covering every submission so far; one already queued for the same
            # submissions is reused (scoring_run_create's rule).
            run = scoring_run_create(project=batch.project, created_by=batch.created_by)
            RelabelBatch.objects.filter(pk=batch.pk).update(scoring_run_id=run.pk)
    batch.refresh_from_db()
    return batch


def relabel_batches_advance_all() -> int:
    advanced = 0
    for batch_id in RelabelBatch.objects.filter(status=RelabelBatchStatus.RELABELLING).values_list(
        "pk", flat=True
    ):
        if relabel_batch_advance(batch_id=batch_id).status != RelabelBatchStatus.RELABELLING:
            advanced += 1
    return advanced


def relabel_batch_states(*, batches: list[RelabelBatch]) -> list[dict[str, Any]]:
    """Batches (of one project) as the lab reads them: progress, the scoring run and each
    item's new labels; a fixed number of queries however many batches."""
    entries = list(
        RelabelBatchItem.objects.filter(batch__in=batches)
        .select_related("item")
        .order_by("reason", "-similarity", "item_id")
    )
    progress = _progress(batches, entries)
    runs = {
        run.pk: run
        for run in ScoringRun.objects.filter(
            pk__in=[batch.scoring_run_id for batch in batches if batch.scoring_run_id]
        ).only("status", "finished_at")
    }
    states = []
    for batch in batches:
        done = progress[batch.pk]
        run = runs.get(batch.scoring_run_id) if batch.scoring_run_id else None
        status = batch.status
        if run is not None and run.status == "succeeded":
            status = "done"
        elif run is not None and run.status == "failed":
            status = "scoring_failed"
        states.append(
            {
                "id": batch.pk,
                "project": batch.project_id,
                "promotion": batch.promotion,
                "dimension": batch.dimension or None,
                "rubric_version": batch.rubric_version.number,
                "labels_per_item": batch.labels_per_item,
                "status": status,
                "created_at": batch.created_at,
                "relabelled_at": batch.relabelled_at,
                "progress": {
                    "labels_needed": done.needed,
                    "labels_done": done.done,
                    "items": done.items,
                    "items_done": done.items_done,
                    "share": round(done.done / done.needed, 4) if done.needed else 1.0,
                },
                "scoring_run": None
                if run is None
                else {"id": run.pk, "status": run.status, "finished_at": run.finished_at},
                "items": [
                    {
                        "item": str(entry.item.public_id),
                        "external_id": entry.item.external_id,
                        "prompt": entry.item.prompt[:200],
                        "reason": entry.reason,
                        "similarity": entry.similarity,
                        "new_labels": done.per_item.get(entry.item_id, 0),
                        "is_open": entry.item.is_open,
                    }
                    for entry in entries
                    if entry.batch_id == batch.pk
                ],
            }
        )
    return states


def relabel_batch_state(*, batch: RelabelBatch) -> dict[str, Any]:
    return relabel_batch_states(batches=[batch])[0]


def bad_case_promote_dimension(
    *,
    project: Project,
    dimension: dict[str, Any],
    items: list[str] | None,
    similar: int | None,
    labels_per_item: int | None,
    created_by: User,
) -> tuple[RubricVersion, RelabelBatch | None]:
    """Promote a failure to a new rubric dimension and re-queue what it is about."""
    affected = affected_bad_case_items(project=project, public_ids=items)
    nearby = similar_items(
        project=project,
        affected=affected,
        count=min(len(affected), MAX_SIMILAR) if similar is None else similar,
    )
    with transaction.atomic():
        version = evolution.rubric_promote_dimension(
            project=project, dimension=dimension, created_by=created_by
        )
        batch = relabel_batch_create(
            project=project,
            promotion="dimension",
            dimension=dimension["key"],
            rubric_version=version,
            affected=affected,
            similar=nearby,
            labels_per_item=labels_per_item or project.redundancy,
            created_by=created_by,
        )
    return version, batch


def bad_case_promote_gold(
    *,
    project: Project,
    promotions: list[dict[str, Any]],
    similar: int | None,
    labels_per_item: int | None,
    created_by: User,
) -> tuple[list[Item], RelabelBatch | None]:
    """Promote bad-case items to gold and re-queue them (the originals) and similar ones."""
    with transaction.atomic():
        created = evolution.gold_promote_items(
            project=project, promotions=promotions, created_by=created_by
        )
        sources = {str(item.context.get("promoted_from")) for item in created}
        affected = list(
            Item.objects.filter(project=project, is_gold=False, public_id__in=sources).order_by(
                "id"
            )
        )
        nearby = similar_items(
            project=project,
            affected=affected,
            count=min(len(affected), MAX_SIMILAR) if similar is None else similar,
        )
        version = project.rubric_versions.order_by("-number").first()
        if version is None:  # gold_promote_items refused a project without a rubric
            raise DomainError("The project has no rubric yet.", code="no_rubric")
        batch = relabel_batch_create(
            project=project,
            promotion="gold",
            dimension="",
            rubric_version=version,
            affected=affected,
            similar=nearby,
            labels_per_item=labels_per_item or project.redundancy,
            created_by=created_by,
        )
    return created, batch
