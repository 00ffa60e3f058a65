-- Assignment rules (contract v3): each rule is a stream (its definition and
-- its rotation's turns); this directory row holds its current definition,
-- written with the AssignmentRuleCreated/Changed/Deleted event that sets
-- it, so that listing the rules and finding the first that matches read
-- one small table rather than every rule's stream.
CREATE TABLE assignment_rules (
    id        uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    body      jsonb NOT NULL,
    ord       int NOT NULL,
    deleted   boolean NOT NULL DEFAULT false
);
CREATE INDEX assignment_rules_by_order ON assignment_rules (tenant_id, ord, id) WHERE NOT deleted;
