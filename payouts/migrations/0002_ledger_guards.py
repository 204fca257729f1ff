"""Database guards for the ledger: entries and transactions are append-only everywhere, and on
PostgreSQL a deferred constraint trigger refuses to commit an unbalanced transaction (or one
whose entries' accounts are in another currency), so no code path can get around the rule."""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION payouts_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER payouts_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON payouts_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION payouts_ledger_append_only();
CREATE TRIGGER payouts_ledgertransaction_append_only
    BEFORE UPDATE OR DELETE ON payouts_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION payouts_ledger_append_only();

CREATE OR REPLACE FUNCTION payouts_ledger_balanced() RETURNS trigger AS $$
DECLARE
    total numeric;
    foreign_currency integer;
BEGIN
    SELECT COALESCE(SUM(amount), 0) INTO total
        FROM payouts_ledgerentry WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (sum %)', NEW.transaction_id, total;
    END IF;
    SELECT COUNT(*) INTO foreign_currency
        FROM payouts_ledgerentry entry
        JOIN payouts_ledgeraccount account ON account.id = entry.account_id
        JOIN payouts_ledgertransaction tx ON tx.id = entry.transaction_id
        WHERE entry.transaction_id = NEW.transaction_id AND account.currency <> tx.currency;
    IF foreign_currency > 0 THEN
        RAISE EXCEPTION 'ledger transaction % mixes currencies', NEW.transaction_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER payouts_ledgerentry_balanced
    AFTER INSERT ON payouts_ledgerentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION payouts_ledger_balanced();
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS payouts_ledgerentry_balanced ON payouts_ledgerentry;
DROP TRIGGER IF EXISTS payouts_ledgerentry_append_only ON payouts_ledgerentry;
DROP TRIGGER IF EXISTS payouts_ledgertransaction_append_only ON payouts_ledgertransaction;
DROP FUNCTION IF EXISTS payouts_ledger_balanced();
DROP FUNCTION IF EXISTS payouts_ledger_append_only();
"""

SQLITE_UP = [
    f"""CREATE TRIGGER payouts_{table}_no_{operation}
        BEFORE {operation.upper()} ON payouts_{table}
        BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END;"""
    for table in ("ledgerentry", "ledgertransaction")
    for operation in ("update", "delete")
]
SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS payouts_{table}_no_{operation};"
    for table in ("ledgerentry", "ledgertransaction")
    for operation in ("update", "delete")
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # params=None: the PL/pgSQL bodies use %, which must not be read as placeholders.
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
    dependencies = [("payouts", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
