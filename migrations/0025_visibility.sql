-- Who may see which customer (docs/API.md, "Tenant policy": members_see).
--
-- Reads of the read models run as the role ledger_reader (the API sets it,
-- with the caller's tenant, user and role, in the same round trip as the
-- query: projections/viewer.go). Row-level security on the read models
-- keys every row by that tenant and, for a member under members_see
-- "assigned", by the customers the member is on the team of, so a query
-- that forgot its WHERE still cannot show a member another member's
-- customer. The service's own role owns the tables and so bypasses the
-- policies: the projections write as before, unslowed.

-- The tenant's members_see, written by ChangePolicy in the transaction of
-- its PolicyChanged event (the policy itself stays in the tenant's stream).
ALTER TABLE tenants ADD COLUMN members_see text NOT NULL DEFAULT 'all'
    CHECK (members_see IN ('all', 'assigned'));

-- The role is cluster-wide; databases of one cluster share it. Creating it
-- needs CREATEROLE: where the service's role lacks it, an operator creates
-- it once (CREATE ROLE ledger_reader NOLOGIN; GRANT ledger_reader TO <the
-- service's role>) before migrating.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_reader') THEN
        CREATE ROLE ledger_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created meanwhile by a migration of another database
END $$;

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'ledger_reader', 'MEMBER') THEN
        EXECUTE format('GRANT ledger_reader TO %I', current_user);
    END IF;
EXCEPTION WHEN unique_violation THEN
    NULL;
END $$;

-- The reader reads what the service reads; the policies below narrow the
-- read models' rows.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ledger_reader;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO ledger_reader;

-- The viewer, as projections/viewer.go sets it for one read. Unset (NULL)
-- matches no tenant: a read as ledger_reader without a viewer sees nothing.
CREATE FUNCTION ledger_viewer_tenant() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('ledger.viewer_tenant', true), '')::uuid $$;

CREATE FUNCTION ledger_viewer_user() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('ledger.viewer_user', true), '') $$;

-- Whether the viewer sees every customer of the tenant: admins and auditors
-- always, members when the tenant's policy says "all".
CREATE FUNCTION ledger_viewer_sees_all() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('ledger.viewer_role', true) IN ('admin', 'auditor'), false)
        OR coalesce((SELECT t.members_see = 'all' FROM tenants t WHERE t.id = ledger_viewer_tenant()), false)
$$;

-- The assignees document that contains the viewer ([{"user_id": ...}]),
-- for a containment test on customer_list.assignees.
CREATE FUNCTION ledger_viewer_team_doc() RETURNS jsonb LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT jsonb_build_array(jsonb_build_object('user_id', ledger_viewer_user())) $$;

-- Whether the viewer may see customer c of their tenant. It reads
-- customer_list, whose own policy decides (the one place membership is
-- tested); a customer the list does not hold (erased, or not projected
-- yet) is visible only to a viewer who sees all. A string body, resolved
-- when called, so rebuilding customer_list (drop and swap) is not blocked
-- by other tables' policies depending on it.
CREATE FUNCTION ledger_viewer_sees(c uuid) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT EXISTS (SELECT 1 FROM customer_list v WHERE v.customer_id = c) $$;

-- The read models under visibility, and how each is keyed:
--   customers  customer_list itself: tenant_id, and assignees names the team
--   customer   tenant_id and customer_id (a NULL customer_id is a
--              tenant-wide row, e.g. a user's event in audit_log)
--   tenant     tenant_id only
--   hidden     not readable as ledger_reader at all: read through a
--              function that applies visibility itself (ledger_search)
CREATE TABLE read_model_visibility (
    table_name text PRIMARY KEY,
    keyed_by   text NOT NULL CHECK (keyed_by IN ('customers', 'customer', 'tenant', 'hidden'))
);

-- (Re)applies a read model table's grant, row-level security and policy.
-- Called by ledger_read_model and by a rebuild's swap, whose new table
-- (built under the same name in a side schema) has none of them yet. A
-- table not registered only gets its grant.
CREATE FUNCTION ledger_apply_visibility(tbl text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    cond text;
BEGIN
    SELECT keyed_by INTO kind FROM read_model_visibility WHERE table_name = tbl;
    IF kind = 'hidden' THEN
        EXECUTE format('REVOKE SELECT ON %I FROM ledger_reader', tbl);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tbl);
        RETURN;
    END IF;
    EXECUTE format('GRANT SELECT ON %I TO ledger_reader', tbl);
    IF kind IS NULL THEN
        RETURN;
    END IF;
    -- (SELECT ledger_viewer_sees_all()) is evaluated once per query (an
    -- InitPlan), so a viewer who sees all pays one comparison per row.
    cond := CASE kind
        WHEN 'customers' THEN
            'tenant_id = ledger_viewer_tenant() AND ((SELECT ledger_viewer_sees_all()) OR assignees @> ledger_viewer_team_doc())'
        WHEN 'customer' THEN
            'tenant_id = ledger_viewer_tenant() AND (customer_id IS NULL OR (SELECT ledger_viewer_sees_all()) OR ledger_viewer_sees(customer_id))'
        ELSE
            'tenant_id = ledger_viewer_tenant()'
    END;
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('DROP POLICY IF EXISTS visibility ON %I', tbl);
    EXECUTE format('CREATE POLICY visibility ON %I FOR SELECT TO ledger_reader USING (%s)', tbl, cond);
END $$;

-- Puts a read model table under visibility: the one line a new read
-- model's migration adds (docs/ARCHITECTURE.md, "Visibility").
CREATE FUNCTION ledger_read_model(tbl text, keyed_by text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_model_visibility (table_name, keyed_by) VALUES (tbl, keyed_by)
        ON CONFLICT (table_name) DO UPDATE SET keyed_by = EXCLUDED.keyed_by;
    PERFORM ledger_apply_visibility(tbl);
END $$;

SELECT ledger_read_model('customer_list', 'customers');
-- A policy on customer_search would keep its trigram index from serving
-- the search: PostgreSQL evaluates the policy before any qual that is not
-- leakproof, and LIKE is not, so every search became a scan of the
-- tenant's rows (75 ms instead of 0.1 ms at 50,000 customers). The reader
-- gets no access to it instead, and searches through ledger_search.
SELECT ledger_read_model('customer_search', 'hidden');
SELECT ledger_read_model('customer_groups', 'customer');
SELECT ledger_read_model('my_clients', 'customer');
SELECT ledger_read_model('assignment_intervals', 'customer');
SELECT ledger_read_model('notifications', 'customer');
SELECT ledger_read_model('audit_log', 'customer');
SELECT ledger_read_model('groups', 'tenant');
SELECT ledger_read_model('ledger_leaves', 'tenant');
SELECT ledger_read_model('ledger_tree_hashes', 'tenant');

-- The tenant's customers whose search text matches p_pattern (a LIKE
-- pattern), as the owner so that the trigram index serves it. Read as
-- ledger_reader, it keeps to the viewer's tenant and the customers the
-- viewer sees (the policies' rule, applied here since it runs as the
-- owner); only IDs come out, which the caller joins with customer_list.
CREATE FUNCTION ledger_search(p_tenant uuid, p_pattern text) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public ROWS 1000 AS $$
    SELECT s.customer_id FROM customer_search s
     WHERE s.tenant_id = p_tenant AND s.search LIKE p_pattern
       AND (current_setting('role') <> 'ledger_reader'
            OR (p_tenant = ledger_viewer_tenant()
                AND ((SELECT ledger_viewer_sees_all())
                     OR EXISTS (SELECT 1 FROM my_clients m
                                 WHERE m.customer_id = s.customer_id AND m.user_id = ledger_viewer_user()::uuid))))
$$;
