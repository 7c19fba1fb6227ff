-- Orders the buyer service knows, so a cancellation can name the product and be checked.
CREATE TABLE orders (
    order_id text PRIMARY KEY,
    buyer_id text NOT NULL,
    product text NOT NULL,
    cancelled boolean NOT NULL DEFAULT false
);
