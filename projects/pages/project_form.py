"""The project form of the lab console: money fields in major units, the rubric editor's
posted rows, and the form's context (skills, rate cards, per-task prices)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from contributors.models import Skill
from marketplace.answer_forms import rubric_dicts
from marketplace.templatetags.marketplace_tags import ZERO_DECIMAL
from projects import selectors
from projects.models import (
    DimensionKind,
    PayUnit,
    Project,
    TaskType,
)
from projects.rate_cards import RATE_CARDS, per_task_cents


def minor_units(raw: str, currency: str) -> int | None:
    """'12.50' usd -> 1250; blank -> None. Pages take major units, the API minor units."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return -1  # refused by the serializer's minimum, with the field named
    factor = 1 if currency.lower() in ZERO_DECIMAL else 100
    return int((amount * factor).to_integral_value())


def _major(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    if currency.lower() in ZERO_DECIMAL:
        return str(amount)
    return f"{Decimal(amount) / 100:.2f}"


def rubric_from_post(post: Any) -> dict[str, Any]:
    """The rubric editor's rows (parallel lists, in the order shown) as the API's rubric."""
    dimensions = []
    columns = ("key", "label", "kind", "min", "max", "options", "weight", "description")
    rows = zip(*(post.getlist(f"dim_{name}") for name in columns), strict=False)
    for key, label, kind, low, high, options, weight, description in rows:
        if not key.strip() and not label.strip():
            continue  # an empty row the editor left behind
        dimension: dict[str, Any] = {
            "key": key.strip(),
            "label": label.strip() or key.strip(),
            "kind": kind,
            "description": description,
        }
        if kind == DimensionKind.LIKERT:
            for name, raw in (("min", low), ("max", high)):
                if raw.strip().lstrip("-").isdigit():
                    dimension[name] = int(raw)
        if kind == DimensionKind.CHOICE:
            dimension["options"] = [o.strip() for o in options.split(",") if o.strip()]
        try:
            dimension["weight"] = float(weight) if weight.strip() else 1.0
        except ValueError:
            dimension["weight"] = -1.0  # refused by the serializer, with the dimension named
        dimensions.append(dimension)
    return {"instructions": post.get("instructions", ""), "dimensions": dimensions}


def project_data(post: Any) -> dict[str, Any]:
    currency = post.get("currency", "usd").strip().lower() or "usd"

    def integer(name: str, default: int) -> Any:
        raw = post.get(name, "").strip()
        return int(raw) if raw.lstrip("-").isdigit() else default

    def fraction(name: str, default: float) -> Any:
        try:
            return float(post.get(name, default))
        except ValueError:
            return -1.0

    required = []
    for key in post.getlist("required_skill"):
        level = post.get(f"required_level.{key}", "1")
        required.append({"skill": key, "min_level": int(level) if level.isdigit() else 1})
    data: dict[str, Any] = {
        "title": post.get("title", ""),
        "description": post.get("description", ""),
        "domain": post.get("domain", ""),
        "task_type": post.get("task_type", ""),
        "rubric": rubric_from_post(post),
        "pay": {
            "unit": post.get("pay_unit", PayUnit.TASK),
            "base_rate": minor_units(post.get("base_rate", ""), currency),
            "currency": currency,
        },
        "redundancy": integer("redundancy", 3),
        "max_redundancy": integer("max_redundancy", integer("redundancy", 3)),
        "gold_rate": fraction("gold_rate", 0.1),
        "lease_minutes": integer("lease_minutes", 30),
        "required_skills": required,
        "required_certifications": post.getlist("required_certification"),
        "budget": minor_units(post.get("budget", ""), currency),
        "bonus_pool_percent": integer("bonus_pool_percent", 0),
        "review_rate": fraction("review_rate", 0.0),
        "review_pay": minor_units(post.get("review_pay", ""), currency) or 0,
        "hourly_floor": minor_units(post.get("hourly_floor", ""), currency),
        "pace_adjusted": post.get("pace_adjusted") == "on",
        "onboarding_gold": integer("onboarding_gold", 5),
        "gold_max_exposures": integer("gold_max_exposures", 50),
        "gold_half_life_days": integer("gold_half_life_days", 180),
        "tiers_by_dimension": post.get("tiers_by_dimension") == "on",
        "priority": post.get("priority", "none"),
    }
    return data


def form_context(project: Project | None, post: Any, errors: list[str]) -> dict[str, Any]:
    """What the project form shows: the posted values after an error, else the project's."""
    if post is not None:
        rubric = rubric_from_post(post)
        values = {key: post.get(key, "") for key in post}
        required_skills = {
            key: post.get(f"required_level.{key}", "1") for key in post.getlist("required_skill")
        }
        required_certifications = set(post.getlist("required_certification"))
    elif project is not None:
        current = selectors.project_current_rubric(project=project)
        rubric = {
            "instructions": current.instructions if current else "",
            "dimensions": rubric_dicts(current.dimensions.order_by("position")) if current else [],
        }
        for dimension, row in zip(
            rubric["dimensions"],
            current.dimensions.order_by("position") if current else [],
            strict=False,
        ):
            dimension["weight"] = row.weight
        values = {
            "title": project.title,
            "description": project.description,
            "domain": project.domain,
            "task_type": project.task_type,
            "pay_unit": project.pay_unit,
            "base_rate": _major(project.base_rate, project.currency),
            "currency": project.currency,
            "redundancy": project.redundancy,
            "max_redundancy": project.max_redundancy,
            "gold_rate": project.gold_rate,
            "lease_minutes": project.lease_minutes,
            "budget": _major(project.budget, project.currency),
            "bonus_pool_percent": project.bonus_pool_percent,
            "review_rate": project.review_rate,
            "review_pay": _major(project.review_pay, project.currency),
            "hourly_floor": _major(project.hourly_floor, project.currency),
            "pace_adjusted": "on" if project.pace_adjusted else "",
            "onboarding_gold": project.onboarding_gold,
            "gold_max_exposures": project.gold_max_exposures,
            "gold_half_life_days": project.gold_half_life_days,
            "tiers_by_dimension": "on" if project.tiers_by_dimension else "",
            "priority": project.priority,
        }
        required_skills = {r.skill.key: str(r.min_level) for r in project.required_skills.all()}
        required_certifications = {r.skill.key for r in project.required_certifications.all()}
    else:
        rubric = {"instructions": "", "dimensions": []}
        values = {
            "currency": "usd",
            "pay_unit": PayUnit.TASK,
            "redundancy": 3,
            "max_redundancy": 3,
            "gold_rate": 0.1,
            "lease_minutes": 30,
            "bonus_pool_percent": 0,
            "review_rate": 0.0,
            "pace_adjusted": "on",
            "onboarding_gold": 5,
            "gold_max_exposures": 50,
            "gold_half_life_days": 180,
            "priority": "none",
            "task_type": TaskType.PAIRWISE,
        }
        required_skills, required_certifications = {}, set()
    for dimension in rubric["dimensions"]:
        options = dimension.get("options") or []
        dimension["options_text"] = ", ".join(options) if isinstance(options, list) else options
    return {
        "values": values,
        "rubric": rubric,
        "errors": errors,
        "skills": Skill.objects.order_by("key"),
        "required_skills": required_skills,
        "required_certifications": required_certifications,
        "task_types": TaskType.choices,
        "pay_units": PayUnit.choices,
        "kinds": DimensionKind.choices,
        "rate_cards": [
            {
                "card": card,
                "five_minutes": per_task_cents(card.typical, 5),
                "two_minutes": per_task_cents(card.typical, 2),
            }
            for card in RATE_CARDS
        ],
    }


def rubric_changed(project: Project, rubric: dict[str, Any]) -> bool:
    """Saving the form must not mint a rubric version when nobody touched the rubric."""
    current = selectors.project_current_rubric(project=project)
    if current is None:
        return bool(rubric.get("dimensions") or rubric.get("instructions"))
    shown = [
        (d.key, d.label, d.description, d.kind, d.min_value, d.max_value, list(d.options), d.weight)
        for d in current.dimensions.order_by("position")
    ]
    posted = [
        (
            d["key"],
            d["label"],
            d.get("description", ""),
            d["kind"],
            d.get("min"),
            d.get("max"),
            list(d.get("options", [])),
            d.get("weight", 1.0),
        )
        for d in rubric.get("dimensions", [])
    ]
    return shown != posted or current.instructions != rubric.get("instructions", "")
