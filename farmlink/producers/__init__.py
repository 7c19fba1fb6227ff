"""Producers' tools: publish a scenario as its parties (signed, in file order), their development keyring, and the
fills the rules give for a file offline (`farmlink simulate`). See README.md."""
