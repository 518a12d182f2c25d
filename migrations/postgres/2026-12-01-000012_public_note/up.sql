-- The short public note a moderator leaves where a comment was removed, as the organisation
-- wrote it ({rules} and {procedure} are filled in per case); none for Redress's model note.
ALTER TABLE organisations ADD COLUMN public_note TEXT;
