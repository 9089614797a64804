-- Up Migration
-- What pattern mining (`fleet patterns`) needs of an archived run: the steps that ran, in the order
-- they started, with their phase definitions, and the workflow's variables. NULL for runs archived
-- before this column existed.
ALTER TABLE runs ADD COLUMN steps jsonb;

-- Down Migration
ALTER TABLE runs DROP COLUMN steps;
