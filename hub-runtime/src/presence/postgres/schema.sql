-- The presence tables and functions (created by every server at connect, one at a time under
-- an advisory lock). Each function is called as one statement: one transaction.
BEGIN;
SELECT pg_advisory_xact_lock({lock});

-- Each server's lease (the database's clock), and whether it renewed since it was last swept.
CREATE TABLE IF NOT EXISTS {servers} (
  server text PRIMARY KEY,
  lease_until timestamptz NOT NULL,
  alive boolean NOT NULL
);

-- One row per connection: in a group (kind 'g') or connected to a hub (kind 'u', group '').
CREATE TABLE IF NOT EXISTS {entries} (
  kind "char" NOT NULL,
  hub text NOT NULL,
  grp text NOT NULL,
  connection text NOT NULL,
  user_id text NOT NULL,
  server text NOT NULL,
  PRIMARY KEY (kind, hub, grp, connection)
);
CREATE INDEX IF NOT EXISTS {entries_by_server} ON {entries} (server);

-- How many connections each user has in a group (or to a hub), and its info in the group.
CREATE TABLE IF NOT EXISTS {counts} (
  kind "char" NOT NULL,
  hub text NOT NULL,
  grp text NOT NULL,
  user_id text NOT NULL,
  connections bigint NOT NULL,
  info text,
  PRIMARY KEY (kind, hub, grp, user_id)
);

-- Adds a connection; the user's count after it (1: the first), or -1 if it was there already.
-- The count's row lock orders simultaneous joins and leaves of one user.
CREATE OR REPLACE FUNCTION {join}(k "char", h text, g text, c text, u text, s text, lease_ms bigint, i text)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE n bigint;
BEGIN
  INSERT INTO {servers} AS t (server, lease_until, alive)
    VALUES (s, now() + lease_ms * interval '1 millisecond', false)
    ON CONFLICT (server) DO NOTHING;
  INSERT INTO {entries} (kind, hub, grp, connection, user_id, server) VALUES (k, h, g, c, u, s)
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN -1;
  END IF;
  INSERT INTO {counts} AS t (kind, hub, grp, user_id, connections, info) VALUES (k, h, g, u, 1, i)
    ON CONFLICT (kind, hub, grp, user_id)
    DO UPDATE SET connections = t.connections + 1, info = COALESCE(excluded.info, t.info)
    RETURNING t.connections INTO n;
  RETURN n;
END
$fn$;

-- Removes a connection; the user's count after it (0: the last), or -1 if it was not there.
CREATE OR REPLACE FUNCTION {leave}(k "char", h text, g text, c text)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE u text; n bigint;
BEGIN
  DELETE FROM {entries} WHERE kind = k AND hub = h AND grp = g AND connection = c RETURNING user_id INTO u;
  IF NOT FOUND THEN
    RETURN -1;
  END IF;
  UPDATE {counts} SET connections = connections - 1
    WHERE kind = k AND hub = h AND grp = g AND user_id = u RETURNING connections INTO n;
  IF n IS NULL OR n <= 0 THEN
    DELETE FROM {counts} WHERE kind = k AND hub = h AND grp = g AND user_id = u;
    RETURN 0;
  END IF;
  RETURN n;
END
$fn$;

-- Renews server s's lease and marks it alive; whether it was alive already (false: it was
-- swept, or is new, and writes its entries again).
CREATE OR REPLACE FUNCTION {refresh}(s text, lease_ms bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE was boolean;
BEGIN
  SELECT alive INTO was FROM {servers} WHERE server = s FOR UPDATE;
  IF FOUND THEN
    UPDATE {servers} SET lease_until = now() + lease_ms * interval '1 millisecond', alive = true
      WHERE server = s;
    RETURN was;
  END IF;
  INSERT INTO {servers} AS t (server, lease_until, alive)
    VALUES (s, now() + lease_ms * interval '1 millisecond', true)
    ON CONFLICT (server) DO UPDATE SET lease_until = excluded.lease_until, alive = true;
  RETURN false;
END
$fn$;

-- Removes every entry of up to `most` servers whose lease ran out (servers another sweeper
-- holds are skipped); the users whose last connection in a group went that way. DELETE …
-- RETURNING hands each entry to one sweeper only.
CREATE OR REPLACE FUNCTION {sweep}(most integer)
RETURNS TABLE (hub text, grp text, user_id text) LANGUAGE plpgsql AS $fn$
DECLARE dead text[]; e record; n bigint;
BEGIN
  SELECT array_agg(d.server) INTO dead FROM (
    SELECT s.server FROM {servers} s WHERE s.lease_until <= now()
    ORDER BY s.lease_until LIMIT most FOR UPDATE SKIP LOCKED
  ) d;
  IF dead IS NULL THEN
    RETURN;
  END IF;
  DELETE FROM {servers} s WHERE s.server = ANY(dead);
  FOR e IN
    WITH gone AS (
      DELETE FROM {entries} x WHERE x.server = ANY(dead) RETURNING x.kind, x.hub, x.grp, x.user_id
    )
    SELECT * FROM gone ORDER BY 1, 2, 3, 4
  LOOP
    UPDATE {counts} t SET connections = t.connections - 1
      WHERE t.kind = e.kind AND t.hub = e.hub AND t.grp = e.grp AND t.user_id = e.user_id
      RETURNING t.connections INTO n;
    IF n IS NOT NULL AND n <= 0 THEN
      DELETE FROM {counts} t
        WHERE t.kind = e.kind AND t.hub = e.hub AND t.grp = e.grp AND t.user_id = e.user_id;
      IF e.kind = 'g' THEN
        hub := e.hub; grp := e.grp; user_id := e.user_id;
        RETURN NEXT;
      END IF;
    END IF;
  END LOOP;
END
$fn$;
COMMIT;
