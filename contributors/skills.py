"""The seeded skill taxonomy (data migration 0002 installs it; a change here needs a new data
migration). Tests that flush the database re-install it with `skills_seed`."""

from __future__ import annotations

from typing import Any

SKILLS = [
    ("software", "Software engineering"),
    ("software.python", "Python"),
    ("software.javascript", "JavaScript and TypeScript"),
    ("software.rust", "Rust"),
    ("software.cpp", "C and C++"),
    ("software.java", "Java and the JVM"),
    ("software.go", "Go"),
    ("software.sql", "SQL and databases"),
    ("software.security", "Application security"),
    ("software.ml", "Machine learning engineering"),
    ("software.devops", "DevOps and infrastructure"),
    ("medicine", "Medicine"),
    ("medicine.cardiology", "Cardiology"),
    ("medicine.oncology", "Oncology"),
    ("medicine.pediatrics", "Pediatrics"),
    ("medicine.psychiatry", "Psychiatry"),
    ("medicine.pharmacology", "Pharmacology"),
    ("medicine.radiology", "Radiology"),
    ("medicine.emergency", "Emergency medicine"),
    ("medicine.general_practice", "General practice"),
    ("law", "Law"),
    ("law.contracts", "Contract law"),
    ("law.ip", "Intellectual property"),
    ("law.employment", "Employment law"),
    ("law.criminal", "Criminal law"),
    ("law.privacy", "Privacy and data protection"),
    ("finance", "Finance"),
    ("finance.accounting", "Accounting"),
    ("finance.tax", "Tax"),
    ("finance.investing", "Investment analysis"),
    ("finance.risk", "Risk management"),
    ("math", "Mathematics"),
    ("math.k12", "School mathematics (K-12)"),
    ("math.calculus", "Calculus and analysis"),
    ("math.linear_algebra", "Linear algebra"),
    ("math.statistics", "Probability and statistics"),
    ("math.proofs", "Proof writing"),
    ("science", "Sciences"),
    ("science.physics", "Physics"),
    ("science.chemistry", "Chemistry"),
    ("science.biology", "Biology"),
    ("science.earth", "Earth and climate science"),
    ("writing", "Writing"),
    ("writing.technical", "Technical writing"),
    ("writing.creative", "Creative writing"),
    ("writing.editing", "Editing and proofreading"),
    ("writing.academic", "Academic writing"),
    ("language", "Languages"),
    ("language.en", "English"),
    ("language.zh", "Chinese"),
    ("language.es", "Spanish"),
    ("language.fr", "French"),
    ("language.de", "German"),
    ("language.ja", "Japanese"),
    ("language.ar", "Arabic"),
    ("language.hi", "Hindi"),
]


def skills_seed(skill_model: Any) -> None:
    """Create the taxonomy's missing skills, parents first (works with a historical model)."""
    by_key = {skill.key: skill for skill in skill_model.objects.all()}
    for key, name in SKILLS:
        if key in by_key:
            continue
        parent = by_key.get(key.rsplit(".", 1)[0]) if "." in key else None
        by_key[key] = skill_model.objects.create(key=key, name=name, parent=parent)
