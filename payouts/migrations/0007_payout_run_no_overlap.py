"""Two payout runs of one currency may never cover the same day, and the database says so: two
drafts sent at the same moment both passed the service's check (issue 17), because neither
could see the other's uncommitted row.

- PostgreSQL: an exclusion constraint over (currency, the inclusive date range), with
  `btree_gist` for the equality on currency. A concurrent second insert waits for the first to
  commit and then fails.
- SQLite: triggers refuse an overlapping INSERT or UPDATE (SQLite runs one writer at a time).
  Note: SQLite rebuilds a table for most `AlterField`s, which drops its triggers; a later
  migration that alters `payouts_payoutrun` must install them again.

The service turns the refusal into the 409 `overlapping_period` it already answered.
"""

from django.db import migrations

CONSTRAINT = "payouts_payoutrun_no_overlap"

POSTGRES_UP = f"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE payouts_payoutrun ADD CONSTRAINT {CONSTRAINT}
    EXCLUDE USING gist (
        currency WITH =,
        daterange(period_start, period_end, '[]') WITH &&
    );
"""
POSTGRES_DOWN = f"ALTER TABLE payouts_payoutrun DROP CONSTRAINT IF EXISTS {CONSTRAINT};"

OVERLAP = """
    SELECT RAISE(ABORT, '{name}: another payout run covers part of this period')
    WHERE EXISTS (
        SELECT 1 FROM payouts_payoutrun AS other
        WHERE other.currency = NEW.currency
          AND other.period_start <= NEW.period_end
          AND other.period_end >= NEW.period_start
          AND other.id IS NOT NEW.id
    );
"""
SQLITE_UP = [
    f"""CREATE TRIGGER {CONSTRAINT}_insert BEFORE INSERT ON payouts_payoutrun
        BEGIN {OVERLAP.format(name=CONSTRAINT)} END;""",
    f"""CREATE TRIGGER {CONSTRAINT}_update
        BEFORE UPDATE OF period_start, period_end, currency ON payouts_payoutrun
        BEGIN {OVERLAP.format(name=CONSTRAINT)} END;""",
]
SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {CONSTRAINT}_insert;",
    f"DROP TRIGGER IF EXISTS {CONSTRAINT}_update;",
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("payouts", "0006_funding_refunds_and_disputes")]
    operations = [migrations.RunPython(install, uninstall)]
