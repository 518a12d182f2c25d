ALTER TABLE organisations DROP COLUMN public_note;
