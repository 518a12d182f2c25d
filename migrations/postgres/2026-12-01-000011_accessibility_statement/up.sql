-- The organisation's accessibility statement, as its admin wrote it; none until they do, when
-- the public page shows Redress's model statement filled in with the organisation's details.
ALTER TABLE organisations ADD COLUMN accessibility_statement TEXT;
