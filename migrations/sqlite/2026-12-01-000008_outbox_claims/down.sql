DROP INDEX sweep_failures_org;
DROP TABLE sweep_failures;
DROP INDEX outbox_lease;
ALTER TABLE outbox DROP COLUMN sending_since;
ALTER TABLE outbox DROP COLUMN claim_id;
