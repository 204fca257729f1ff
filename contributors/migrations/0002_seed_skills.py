"""Seed the skill taxonomy. Admins add more in the Django admin."""

from django.db import migrations

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


def seed(apps, schema_editor):
    Skill = apps.get_model("contributors", "Skill")
    by_key = {}
    for key, name in SKILLS:
        parent = by_key.get(key.rsplit(".", 1)[0]) if "." in key else None
        skill, _ = Skill.objects.get_or_create(key=key, defaults={"name": name, "parent": parent})
        by_key[key] = skill


def unseed(apps, schema_editor):
    Skill = apps.get_model("contributors", "Skill")
    keys = [key for key, _ in SKILLS]
    # Children first: parents are protected while children point at them.
    for key in sorted(keys, key=lambda k: -k.count(".")):
        Skill.objects.filter(key=key).delete()


class Migration(migrations.Migration):
    dependencies = [("contributors", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
