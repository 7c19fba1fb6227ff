"""The matching service: journals inputs per product and runs the pure matcher over them."""
