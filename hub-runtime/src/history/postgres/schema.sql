-- The history tables and functions (created by every server at connect, one at a time under an
-- advisory lock). Each function is called as one statement: one transaction.
BEGIN;
SELECT pg_advisory_xact_lock({lock});

-- Each group's epoch and last offset; its history is gone once `expires` passed (a new epoch).
CREATE TABLE IF NOT EXISTS {groups} (
  hub text NOT NULL,
  grp text NOT NULL,
  epoch text NOT NULL,
  last_offset bigint NOT NULL,
  expires timestamptz NOT NULL,
  PRIMARY KEY (hub, grp)
);

-- The messages kept, by group and offset.
CREATE TABLE IF NOT EXISTS {messages} (
  hub text NOT NULL,
  grp text NOT NULL,
  off bigint NOT NULL,
  epoch text NOT NULL,
  expires timestamptz NOT NULL,
  payload text NOT NULL,
  PRIMARY KEY (hub, grp, off)
);
CREATE INDEX IF NOT EXISTS {messages_by_expiry} ON {messages} (expires);

-- Locks the group's row (created, or started again in a new epoch when its history is gone);
-- its epoch and last offset.
CREATE OR REPLACE FUNCTION {group_of}(h text, g text, ttl_ms bigint, new_epoch text,
  OUT epoch text, OUT last_offset bigint)
LANGUAGE plpgsql AS $fn$
DECLARE until timestamptz;
BEGIN
  LOOP
    SELECT t.epoch, t.last_offset, t.expires INTO epoch, last_offset, until
      FROM {groups} t WHERE t.hub = h AND t.grp = g FOR UPDATE;
    IF FOUND THEN
      IF until <= now() THEN
        DELETE FROM {messages} m WHERE m.hub = h AND m.grp = g;
        epoch := new_epoch;
        last_offset := 0;
        UPDATE {groups} t SET epoch = new_epoch, last_offset = 0,
            expires = now() + ttl_ms * interval '1 millisecond'
          WHERE t.hub = h AND t.grp = g;
      END IF;
      RETURN;
    END IF;
    INSERT INTO {groups} (hub, grp, epoch, last_offset, expires)
      VALUES (h, g, new_epoch, 0, now() + ttl_ms * interval '1 millisecond')
      ON CONFLICT DO NOTHING;
  END LOOP;
END
$fn$;

-- Appends a message under the group's row lock (so offsets have no gaps, and notifications,
-- delivered at commit, come in offset order), trims by length and age, and notifies `channel`
-- of the position ("epoch:offset"; the listeners read the row). Returns the position.
CREATE OR REPLACE FUNCTION {append}(h text, g text, max_len bigint, ttl_ms bigint, new_epoch text,
  body text, channel text, OUT epoch text, OUT off bigint)
LANGUAGE plpgsql AS $fn$
DECLARE until timestamptz := now() + ttl_ms * interval '1 millisecond'; e text; o bigint;
BEGIN
  SELECT x.epoch, x.last_offset + 1 INTO e, o FROM {group_of}(h, g, ttl_ms, new_epoch) x;
  UPDATE {groups} t SET last_offset = o, expires = until WHERE t.hub = h AND t.grp = g;
  INSERT INTO {messages} (hub, grp, off, epoch, expires, payload) VALUES (h, g, o, e, until, body);
  DELETE FROM {messages} m
    WHERE m.hub = h AND m.grp = g AND (m.off <= o - max_len OR m.expires <= now());
  PERFORM pg_notify(channel, e || ':' || o);
  epoch := e;
  off := o;
END
$fn$;

-- The group's position (creating its epoch if needed), then the messages after offset
-- `after` still kept, at most the `most` latest, oldest first (none for a null `after`, or
-- when `asked`, if not null, is not the group's epoch).
CREATE OR REPLACE FUNCTION {read}(h text, g text, ttl_ms bigint, new_epoch text, asked text,
  after bigint, most bigint)
RETURNS TABLE (epoch text, off bigint, payload text) LANGUAGE plpgsql AS $fn$
DECLARE e text; o bigint;
BEGIN
  SELECT x.epoch, x.last_offset INTO e, o FROM {group_of}(h, g, ttl_ms, new_epoch) x;
  epoch := e; off := o; payload := NULL;
  RETURN NEXT;
  IF after IS NULL OR after >= o OR (asked IS NOT NULL AND asked <> e) THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT m.epoch, m.off, m.payload FROM (
      SELECT * FROM {messages} m2
      WHERE m2.hub = h AND m2.grp = g AND m2.off > after AND m2.expires > now()
      ORDER BY m2.off DESC LIMIT most
    ) m ORDER BY m.off;
END
$fn$;

-- Deletes what expired: messages, and groups (with their epochs).
CREATE OR REPLACE FUNCTION {clean}()
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM {messages} m WHERE m.expires <= now();
  DELETE FROM {groups} t WHERE t.expires <= now();
END
$fn$;
COMMIT;
