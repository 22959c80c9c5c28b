-- Every statement the swap of one table replays (swap.py), as (kind, SQL text), made by format() so that the
-- server quotes names and literals. The old table is :t; the statements name it by its own name, which the
-- new table has by the time they run ({new} stands for the new table's name where it has not).
SELECT kind, statement FROM (
WITH t AS (SELECT c.*, format('%I.%I', n.nspname, c.relname) AS q
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.oid = CAST(:t AS regclass))
-- CHECK constraints, on the new table before its rows arrive (NOT VALID ones stay NOT VALID)
SELECT 1, 'check', format('ALTER TABLE %s ADD CONSTRAINT %I %s', '{new}', k.conname, pg_get_constraintdef(k.oid))
FROM pg_constraint k, t WHERE k.conrelid = t.oid AND k.contype = 'c'
UNION ALL
-- foreign keys of other tables that reference it: dropped before the old table, added back NOT VALID
SELECT 2, 'incoming', json_build_object(
           'table', format('%I.%I', n.nspname, r.relname), 'name', k.conname,
           'def', pg_get_constraintdef(k.oid), 'valid', k.convalidated,
           'comment', obj_description(k.oid, 'pg_constraint'))::text
FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace, t
WHERE k.confrelid = t.oid AND k.conrelid <> t.oid AND k.contype = 'f'
UNION ALL
-- sequences its columns own (serial): given to the new table, or the drop would take them along
SELECT 3, 'owned', format('ALTER SEQUENCE %s OWNED BY %s.%I', d.objid::regclass, '{new}', a.attname)
FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
     JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S', t
WHERE d.refobjid = t.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype = 'a'
UNION ALL
SELECT 4, 'after', format('ALTER TABLE %s OWNER TO %I', t.q, pg_get_userbyid(t.relowner)) FROM t
UNION ALL
-- constraints with indexes, and its own foreign keys (NOT VALID, checked at the end of the scrub)
SELECT 5, CASE WHEN k.contype = 'f' AND k.convalidated THEN 'own-fk' ELSE 'after' END,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', t.q, k.conname, pg_get_constraintdef(k.oid))
       || CASE WHEN k.contype = 'f' AND k.convalidated THEN ' NOT VALID' ELSE '' END
FROM pg_constraint k, t WHERE k.conrelid = t.oid AND k.contype IN ('p', 'u', 'x', 'f')
UNION ALL
SELECT 6, 'after', pg_get_indexdef(i.indexrelid)
FROM pg_index i, t
WHERE i.indrelid = t.oid AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                                          AND k.conrelid = t.oid AND k.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT 7, 'after', format('ALTER TABLE %s CLUSTER ON %I', t.q, x.relname)
FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid, t WHERE i.indrelid = t.oid AND i.indisclustered
UNION ALL
SELECT 8, 'after', format('ALTER TABLE %s REPLICA IDENTITY %s', t.q, CASE t.relreplident
           WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL'
           ELSE (SELECT format('USING INDEX %I', x.relname) FROM pg_index i JOIN pg_class x
                 ON x.oid = i.indexrelid WHERE i.indrelid = t.oid AND i.indisreplident) END)
FROM t WHERE t.relreplident <> 'd'
UNION ALL
SELECT 9, 'after', pg_get_triggerdef(g.oid) FROM pg_trigger g, t WHERE g.tgrelid = t.oid AND NOT g.tgisinternal
UNION ALL
SELECT 10, 'after', format('ALTER TABLE %s %s TRIGGER %I', t.q, CASE g.tgenabled
           WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END, g.tgname)
FROM pg_trigger g, t WHERE g.tgrelid = t.oid AND NOT g.tgisinternal AND g.tgenabled <> 'O'
UNION ALL
SELECT 11, 'after', format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.q) FROM t WHERE t.relrowsecurity
UNION ALL
SELECT 12, 'after', format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t.q) FROM t WHERE t.relforcerowsecurity
UNION ALL
SELECT 13, 'after', format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', p.policyname, t.q, p.permissive,
           p.cmd, (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ')
                   FROM unnest(p.roles) r),
           ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
FROM pg_policies p, t, pg_namespace n
WHERE n.oid = t.relnamespace AND p.schemaname = n.nspname AND p.tablename = t.relname
UNION ALL
SELECT 14, 'after', format('ALTER TABLE %s SET (%s)', t.q, array_to_string(t.reloptions, ', '))
FROM t WHERE t.reloptions IS NOT NULL
UNION ALL
SELECT 15, 'after', format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', t.q, a.attname, a.attstattarget)
FROM pg_attribute a, t
WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
UNION ALL
SELECT 16, 'after', format('ALTER TABLE %s ALTER COLUMN %I SET (%s)', t.q, a.attname,
                       array_to_string(a.attoptions, ', '))
FROM pg_attribute a, t
WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attoptions IS NOT NULL
UNION ALL
SELECT 17, 'after', pg_get_statisticsobjdef(s.oid) FROM pg_statistic_ext s, t WHERE s.stxrelid = t.oid
UNION ALL
-- comments: the table's, its columns', and those of what is made again (constraints, indexes, ...)
SELECT 18, 'after', format('COMMENT ON TABLE %s IS %L', t.q, obj_description(t.oid, 'pg_class'))
FROM t WHERE obj_description(t.oid, 'pg_class') IS NOT NULL
UNION ALL
SELECT 19, 'after', format('COMMENT ON COLUMN %s.%I IS %L', t.q, a.attname, col_description(t.oid, a.attnum))
FROM pg_attribute a, t
WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND col_description(t.oid, a.attnum) IS NOT NULL
UNION ALL
SELECT 20, 'after', format('COMMENT ON CONSTRAINT %I ON %s IS %L', k.conname, t.q,
                       obj_description(k.oid, 'pg_constraint'))
FROM pg_constraint k, t WHERE k.conrelid = t.oid AND obj_description(k.oid, 'pg_constraint') IS NOT NULL
UNION ALL
SELECT 21, 'after', format('COMMENT ON INDEX %s IS %L', i.indexrelid::regclass, obj_description(i.indexrelid, 'pg_class'))
FROM pg_index i, t WHERE i.indrelid = t.oid AND obj_description(i.indexrelid, 'pg_class') IS NOT NULL
UNION ALL
SELECT 22, 'after', format('COMMENT ON TRIGGER %I ON %s IS %L', g.tgname, t.q, obj_description(g.oid, 'pg_trigger'))
FROM pg_trigger g, t WHERE g.tgrelid = t.oid AND obj_description(g.oid, 'pg_trigger') IS NOT NULL
UNION ALL
SELECT 23, 'after', format('COMMENT ON POLICY %I ON %s IS %L', p.polname, t.q, obj_description(p.oid, 'pg_policy'))
FROM pg_policy p, t WHERE p.polrelid = t.oid AND obj_description(p.oid, 'pg_policy') IS NOT NULL
UNION ALL
SELECT 24, 'after', format('COMMENT ON STATISTICS %s IS %L', format('%I.%I', sn.nspname, s.stxname),
                       obj_description(s.oid, 'pg_statistic_ext'))
FROM pg_statistic_ext s JOIN pg_namespace sn ON sn.oid = s.stxnamespace, t
WHERE s.stxrelid = t.oid AND obj_description(s.oid, 'pg_statistic_ext') IS NOT NULL
UNION ALL
-- privileges: the owner's own first taken away (a new table gives the owner everything), then each
-- grant of the old table's list made again; NULL (never granted) needs nothing
SELECT 25, 'after', format('REVOKE ALL ON %s FROM %I', t.q, pg_get_userbyid(t.relowner))
FROM t WHERE t.relacl IS NOT NULL
UNION ALL
SELECT 26, 'after', format('GRANT %s ON %s TO %s%s', g.privilege_type, t.q,
           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
           CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM t, aclexplode(t.relacl) g
UNION ALL
SELECT 27, 'after', format('GRANT %s (%I) ON %s TO %s%s', g.privilege_type, a.attname, t.q,
           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
           CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM pg_attribute a, t, aclexplode(a.attacl) g
WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
UNION ALL
-- identity sequences are made anew with the table (swap.py renames them back): their privileges and
-- comments, as the old ones had them
SELECT 28, 'after', format('REVOKE ALL ON SEQUENCE %s FROM %I', q.seq, pg_get_userbyid(q.relowner))
FROM (SELECT pg_get_serial_sequence(t.q, a.attname) AS seq, s.relowner, s.relacl
      FROM pg_attribute a, t, pg_class s
      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> ''
        AND s.oid = CAST(pg_get_serial_sequence(t.q, a.attname) AS regclass)) q
WHERE q.relacl IS NOT NULL
UNION ALL
SELECT 29, 'after', format('GRANT %s ON SEQUENCE %s TO %s%s', g.privilege_type, q.seq,
           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
           CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM (SELECT pg_get_serial_sequence(t.q, a.attname) AS seq, s.relacl
      FROM pg_attribute a, t, pg_class s
      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> ''
        AND s.oid = CAST(pg_get_serial_sequence(t.q, a.attname) AS regclass)) q, aclexplode(q.relacl) g
UNION ALL
SELECT 30, 'after', format('COMMENT ON SEQUENCE %s IS %L', q.seq, obj_description(q.oid, 'pg_class'))
FROM (SELECT pg_get_serial_sequence(t.q, a.attname) AS seq,
             CAST(pg_get_serial_sequence(t.q, a.attname) AS regclass) AS oid
      FROM pg_attribute a, t
      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '') q
WHERE obj_description(q.oid, 'pg_class') IS NOT NULL
) AS s(ord, kind, statement) ORDER BY ord
