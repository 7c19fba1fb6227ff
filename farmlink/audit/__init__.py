"""`farmlink audit`: replay the whole log, re-execute the matcher, check invariants, reconcile with Kafka."""
