-- consent_switch() version 3: one consent change in one round trip on
-- PostgreSQL. Installed by migration consent/0017; called by
-- consent/services/switch_postgres.py. Released files are never edited: a
-- change is consent_switch_v3.sql and a migration that loads it (the
-- migration pins each file's SHA-256, and tests/consent/test_sql.py compares
-- the installed function with this file).
--
-- The function does the whole change server-side, in the statement that
-- calls it: it locks the track, reads the decision, the artist's default, the
-- current rule and the ledger head (each after the lock, so a writer it
-- waited for is seen), and when something changes appends the ledger row,
-- updates the decision, eligibility and track version, writes the receipt
-- and its link to the track, and records the change in the propagation
-- outbox (one statement).
--
-- It holds no rule of its own. consent.services passes in
--
-- * p_eligible_when: the 'rule:default' pairs for which the new answer is
--   eligible, computed by consent.policy.is_eligible (the one definition);
-- * p_entry_template and p_receipt_template: the canonical encoding of the
--   ledger row (consent.ledger.canonical) and the receipt JSON
--   (consent.receipts.receipt_payload) built in Python, with format() slots
--   where the values read under the lock go (each a JSON value): 1 the new
--   consent version, 2 the old state, 3 the old eligibility, 4 the new
--   eligibility, 5 the policy version, 6 the ISRC, 7 the ledger hash and
--   8 the receipt's principal (the locked row's artist id, as a string).
--
-- The hash is sha256(canonical || prev_hash), as consent.ledger. outcome is
-- 'changed', 'unchanged', 'missing', 'conflict' (the p_if_version check
-- failed) or 'locked' (the policy prohibits the use).
--
-- Since version 1: the principal is slot 8, filled from the locked row. It
-- was filled in Python from the caller's track object, which names the old
-- artist when the track changed hands after it was read, while the receipt
-- row named the new one.
--
-- Since version 2: the change is recorded in consent_propagationchange (the
-- outbox that consent.propagation fans out to every consumer), as the Python
-- path's consent.propagation.propagation_record does: one row, the track
-- and its new consent version, in the same transaction.

CREATE OR REPLACE FUNCTION consent_switch(
    p_track_id bigint,
    p_public_id text,
    p_owner_id bigint,
    p_use text,
    p_decision text,
    p_if_version bigint,
    p_eligible_when text[],
    p_actor_id bigint,
    p_source text,
    p_request_id text,
    p_now timestamptz,
    p_bump_updated boolean,
    p_entry_template text,
    p_receipt_public_id uuid,
    p_receipt_template text,
    OUT outcome text,
    OUT track_id bigint,
    OUT public_id text,
    OUT title text,
    OUT artist_id bigint,
    OUT license_class text,
    OUT isrc text,
    OUT consent_version integer,
    OUT old_decision text,
    OUT old_eligible boolean,
    OUT new_eligible boolean,
    OUT artist_default text,
    OUT rule text,
    OUT policy_version integer,
    OUT prev_hash text,
    OUT entry_hash text,
    OUT entry_id bigint,
    OUT receipt_id bigint
) AS $$
DECLARE
    v_slots text[];
BEGIN
    IF p_track_id IS NOT NULL THEN
        SELECT t.id, t.public_id, t.title, t.artist_id, t.license_class, t.isrc,
               t.consent_version
          INTO track_id, public_id, title, artist_id, license_class, isrc,
               consent_version
          FROM catalog_track t WHERE t.id = p_track_id
           FOR UPDATE;
    ELSE
        -- By public id, scoped to the owner: another artist's track is absent.
        SELECT t.id, t.public_id, t.title, t.artist_id, t.license_class, t.isrc,
               t.consent_version
          INTO track_id, public_id, title, artist_id, license_class, isrc,
               consent_version
          FROM catalog_track t
         WHERE t.public_id = p_public_id AND t.artist_id = p_owner_id
           FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        outcome := 'missing';
        RETURN;
    END IF;
    -- A new statement, so a new snapshot: it sees every change committed by
    -- a writer this one waited for at the lock.
    SELECT tc.decision, tc.eligible,
           (SELECT d.decision FROM consent_artistdefault d
             WHERE d.artist_id = consent_switch.artist_id AND d.use = p_use),
           v.number, r.rule,
           (SELECT l.entry_hash FROM consent_ledgerentry l
             WHERE l.track_id = consent_switch.track_id
               AND l.consent_version = consent_switch.consent_version)
      INTO old_decision, old_eligible, artist_default, policy_version, rule,
           prev_hash
      FROM consent_trackconsent tc
      JOIN consent_policyversion v
        ON v.number = (SELECT max(number) FROM consent_policyversion)
      JOIN consent_policyrule r
        ON r.version_id = v.id AND r.license_class = consent_switch.license_class
       AND r.use = p_use
     WHERE tc.track_id = consent_switch.track_id AND tc.use = p_use;
    IF NOT FOUND THEN
        outcome := 'missing';
        RETURN;
    END IF;
    new_eligible := old_eligible;
    IF p_if_version IS NOT NULL AND p_if_version <> consent_version THEN
        outcome := 'conflict';
        RETURN;
    END IF;
    IF old_decision = p_decision THEN
        outcome := 'unchanged';
        RETURN;
    END IF;
    IF rule = 'prohibited' THEN
        outcome := 'locked';
        RETURN;
    END IF;
    new_eligible := (rule || ':' || coalesce(artist_default, '')) = ANY(p_eligible_when);
    prev_hash := coalesce(prev_hash, repeat('0', 64));
    consent_version := consent_version + 1;
    v_slots := ARRAY[
        to_json(consent_version)::text,
        to_json(coalesce(nullif(old_decision, ''), 'default'))::text,
        to_json(old_eligible)::text,
        to_json(new_eligible)::text,
        to_json(policy_version)::text,
        coalesce(to_json(isrc)::text, 'null')
    ];
    entry_hash := encode(sha256(convert_to(
        format(p_entry_template, VARIADIC v_slots) || prev_hash, 'UTF8')), 'hex');
    -- The six writes in one statement.
    WITH ledger AS (
        INSERT INTO consent_ledgerentry (
            track_id, consent_version, use, old_state, new_state, old_eligible,
            new_eligible, actor_id, source, created_at, policy_version,
            request_id, note, prev_hash, entry_hash
        ) VALUES (
            consent_switch.track_id, consent_switch.consent_version, p_use,
            coalesce(nullif(old_decision, ''), 'default'),
            coalesce(nullif(p_decision, ''), 'default'),
            old_eligible, new_eligible, p_actor_id, p_source, p_now,
            consent_switch.policy_version, p_request_id, '',
            consent_switch.prev_hash, consent_switch.entry_hash
        ) RETURNING id
    ), answer AS (
        UPDATE consent_trackconsent tc
           SET decision = p_decision, eligible = new_eligible, updated_at = p_now
         WHERE tc.track_id = consent_switch.track_id AND tc.use = p_use
    ), version AS (
        UPDATE catalog_track t
           SET consent_version = consent_switch.consent_version,
               updated_at = CASE WHEN p_bump_updated THEN p_now ELSE t.updated_at END
         WHERE t.id = consent_switch.track_id
    ), receipt AS (
        INSERT INTO consent_receipt (public_id, artist_id, created_at, payload)
        VALUES (
            p_receipt_public_id, consent_switch.artist_id, p_now,
            -- The ledger hash and the principal are known only here.
            format(p_receipt_template,
                   VARIADIC v_slots || ARRAY[
                       to_json(consent_switch.entry_hash)::text,
                       to_json(consent_switch.artist_id::text)::text
                   ])::jsonb
        ) RETURNING id
    ), link AS (
        INSERT INTO consent_receipt_tracks (receipt_id, track_id)
        SELECT receipt.id, consent_switch.track_id FROM receipt
    ), outbox AS (
        INSERT INTO consent_propagationchange (track_id, consent_version, created_at)
        VALUES (consent_switch.track_id, consent_switch.consent_version, p_now)
    )
    SELECT (SELECT ledger.id FROM ledger), (SELECT receipt.id FROM receipt)
      INTO entry_id, receipt_id;
    outcome := 'changed';
END
$$ LANGUAGE plpgsql;
