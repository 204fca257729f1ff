"""Seed the skill taxonomy. Admins add more in the Django admin."""

from django.db import migrations

from contributors.skills import SKILLS, skills_seed



def seed(apps, schema_editor):
    skills_seed(apps.get_model("contributors", "Skill"))


def unseed(apps, schema_editor):
    Skill = apps.get_model("contributors", "Skill")
    keys = [key for key, _ in SKILLS]
    # Children first: parents are protected while children point at them.
    for key in sorted(keys, key=lambda k: -k.count(".")):
        Skill.objects.filter(key=key).delete()


class Migration(migrations.Migration):
    dependencies = [("contributors", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
