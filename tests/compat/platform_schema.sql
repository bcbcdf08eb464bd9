-- The tables of the platform's own schema (state.sql and debian/debian.sql of
-- its repository) that these services read, written here in the platform's
-- shape: its types, constraints and the columns the runner fills, including
-- ones the services never read. A database made by the platform looks like
-- this before `janitor-db upgrade` adopts it.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS debversion;
CREATE TYPE vcs_type AS ENUM ('bzr', 'git', 'svn', 'mtn', 'hg', 'arch', 'cvs', 'darcs');
CREATE TYPE review_status AS ENUM ('unreviewed', 'approved', 'rejected', 'abstained');
CREATE TYPE change_set_state AS ENUM ('created', 'working', 'ready', 'publishing', 'done');
CREATE DOMAIN campaign_name AS text CHECK (VALUE ~ '^[a-z0-9][a-z0-9+-.]+$');
CREATE DOMAIN codebase_name AS text CHECK (VALUE ~ '^[a-z0-9][a-z0-9+-.]+$');

CREATE TABLE codebase (
  name codebase_name NOT NULL UNIQUE,
  branch_url text,
  url text,
  branch text,
  subpath text,
  vcs_type vcs_type,
  vcs_last_revision text,
  value integer,
  inactive boolean NOT NULL DEFAULT false,
  last_scanned timestamp,
  web_url text,
  hostname text,
  CHECK ((url IS NULL) = (branch_url IS NULL))
);

CREATE TABLE worker (
  name text NOT NULL UNIQUE,
  password text NOT NULL,
  link text
);

CREATE TABLE change_set (
  id text NOT NULL UNIQUE,
  campaign campaign_name,
  state change_set_state NOT NULL DEFAULT 'created'
);

CREATE TABLE run (
  id text NOT NULL PRIMARY KEY,
  command text,
  description text,
  start_time timestamp,
  finish_time timestamp,
  instigated_context text,
  context text,
  main_branch_revision text,
  vcs_type vcs_type,
  branch_url text,
  logfilenames text[] NOT NULL,
  review_status review_status NOT NULL DEFAULT 'unreviewed',
  value integer,
  worker text REFERENCES worker (name),
  result_code text NOT NULL,
  failure_details json,
  failure_stage text,
  failure_transient boolean,
  revision text,
  result json,
  suite campaign_name NOT NULL,
  resume_from text REFERENCES run (id),
  change_set text NOT NULL REFERENCES change_set (id),
  codebase codebase_name NOT NULL REFERENCES codebase (name),
  target_branch_url text,
  result_tags text[][],
  CHECK (result_code = 'success' OR failure_stage IS NOT NULL OR result_code IN ('nothing-to-do', 'nothing-new-to-do'))
);
CREATE INDEX ON run (codebase, suite, start_time);

CREATE TABLE debian_build (
  run_id text NOT NULL REFERENCES run (id),
  version debversion NOT NULL,
  distribution text NOT NULL,
  source text NOT NULL,
  binary_packages text[],
  lintian_result json
);
CREATE INDEX ON debian_build (distribution, source, version);
