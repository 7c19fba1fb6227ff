-- What the pairing service needs to decide its inputs, and what the pairing office's reports read
-- (services/pairing/app.py): pairings, support delivered, projects and their milestones.
CREATE TABLE pairings (
    pairing_id text PRIMARY KEY,
    kind text NOT NULL,             -- 9+2 | 1+1
    helper text NOT NULL,
    helper_kind text NOT NULL,
    helped text NOT NULL,
    helped_kind text NOT NULL,      -- township | village
    helped_township text,
    team text NOT NULL
);

CREATE TABLE support (
    delivery_id text PRIMARY KEY,
    pairing_id text NOT NULL REFERENCES pairings,
    kind text NOT NULL,             -- seedlings | money | experts | equipment
    quantity numeric NOT NULL,
    value_fen bigint NOT NULL,
    delivered_on date NOT NULL,
    to_cooperative_id text,
    to_village text,
    note text NOT NULL
);

CREATE TABLE projects (
    project_id text PRIMARY KEY,
    name text NOT NULL,
    owner_team text NOT NULL,
    target text NOT NULL,
    due_on date NOT NULL,
    pairing_id text,
    product text
);

CREATE TABLE milestones (
    project_id text NOT NULL REFERENCES projects,
    milestone_id text NOT NULL,
    name text NOT NULL,
    due_on date NOT NULL,
    reached_on date,
    evidence text,
    PRIMARY KEY (project_id, milestone_id)
);
