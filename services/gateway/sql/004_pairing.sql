-- The pairing office's page (services/gateway/office.py) shows pairings, their support and projects:
-- kept from farmlink.pairing.events.
CREATE TABLE pairings (
    pairing_id text PRIMARY KEY,
    kind text NOT NULL,
    helper text NOT NULL,
    helped text NOT NULL,
    helped_kind text NOT NULL,
    helped_township text,
    team text NOT NULL
);

CREATE TABLE support (
    delivery_id text PRIMARY KEY,
    pairing_id text NOT NULL,
    kind text NOT NULL,
    value_fen bigint NOT NULL
);

CREATE TABLE projects (
    project_id text PRIMARY KEY,
    name text NOT NULL,
    owner_team text NOT NULL,
    due_on date NOT NULL
);

CREATE TABLE milestones (
    project_id text NOT NULL,
    milestone_id text NOT NULL,
    due_on date NOT NULL,
    reached_on date,
    PRIMARY KEY (project_id, milestone_id)
);
