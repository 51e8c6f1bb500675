-- Checkpoints belong to the token that committed them (its name; '' with
-- auth off), so one tenant cannot read, list or move another's resume point.
-- Checkpoints of earlier versions belong to '' (the auth-off owner).
ALTER TABLE checkpoints ADD COLUMN owner TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE checkpoints DROP CONSTRAINT checkpoints_pkey;
ALTER TABLE checkpoints ADD PRIMARY KEY (owner, name, stream);
