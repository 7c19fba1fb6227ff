"""The operator's tools: the local Kafka and PostgreSQL, the services as processes and their health, the fault run
and the benchmarks. See README.md."""
