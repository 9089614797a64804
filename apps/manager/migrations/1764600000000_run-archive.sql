-- Up Migration
-- The run archive: one row per finished run, its phases, attempts and events. Written by the manager
-- (apps/manager/src/archive), read by the HTTP API when Redis no longer holds the run.
CREATE TABLE runs (
  run_id          text PRIMARY KEY,
  status          text NOT NULL,
  workflow_name   text NOT NULL,
  workflow_version text NOT NULL,
  requirements    text NOT NULL,
  user_id         text,
  conversation_id text,
  template        text,
  parent_run_id   text,
  created_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  duration_ms     bigint NOT NULL,
  input_tokens    bigint NOT NULL DEFAULT 0,
  output_tokens   bigint NOT NULL DEFAULT 0,
  cost_usd        double precision,
  error_code      text,
  -- the whole result as GET /api/runs/:id serves it (outputs under "results")
  result          jsonb NOT NULL,
  labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
  archived_at     timestamptz NOT NULL DEFAULT now()
);
-- Listing is newest first with a (created_at, run_id) cursor, alone or under one filter.
CREATE INDEX runs_created_idx ON runs (created_at DESC, run_id DESC);
CREATE INDEX runs_status_created_idx ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX runs_workflow_created_idx ON runs (workflow_name, created_at DESC, run_id DESC);
CREATE INDEX runs_workflow_status_created_idx ON runs (workflow_name, status, created_at DESC, run_id DESC);
CREATE INDEX runs_user_created_idx ON runs (user_id, created_at DESC, run_id DESC);
CREATE INDEX runs_conversation_idx ON runs (conversation_id, created_at DESC) WHERE conversation_id IS NOT NULL;
CREATE INDEX runs_finished_idx ON runs (finished_at);
-- Words in the requirements.
CREATE INDEX runs_requirements_fts_idx ON runs USING gin (to_tsvector('simple', requirements));

CREATE TABLE run_phases (
  run_id      text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  name        text NOT NULL,
  agent       text NOT NULL,
  status      text NOT NULL,
  attempts    integer NOT NULL,
  iterations  integer NOT NULL,
  duration_ms bigint,
  input_tokens  bigint NOT NULL DEFAULT 0,
  output_tokens bigint NOT NULL DEFAULT 0,
  error_code  text,
  output      jsonb,
  PRIMARY KEY (run_id, name)
);

CREATE TABLE run_events (
  run_id    text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  stream_id text NOT NULL,
  seq       integer NOT NULL,
  type      text NOT NULL,
  at        timestamptz,
  data      jsonb NOT NULL,
  PRIMARY KEY (run_id, seq)
);

-- Down Migration
DROP TABLE run_events;
DROP TABLE run_phases;
DROP TABLE runs;
