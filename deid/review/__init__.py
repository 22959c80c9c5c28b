"""Reviews for data owners: what changed in a schema since its snapshot (schema_diff), what a rule-file change
does to each column (plan_diff), and the hint a failed run gives towards them (hints)."""
