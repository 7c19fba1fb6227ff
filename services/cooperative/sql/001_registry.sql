-- What the cooperative service needs to validate inputs: cooperatives and their households.
CREATE TABLE cooperatives (
    cooperative_id text PRIMARY KEY,
    name text NOT NULL,
    county text NOT NULL,
    township text NOT NULL,
    village text NOT NULL
);

CREATE TABLE households (
    household_id text PRIMARY KEY,
    cooperative_id text NOT NULL REFERENCES cooperatives,
    registered_poor boolean NOT NULL
);
