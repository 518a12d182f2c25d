ALTER TABLE organisations DROP COLUMN accessibility_statement;
