"""`farmlink chaos`: a bounded fault run on the local broker and server, and the proof that
nothing was lost or done twice.

A reproducible stream of input events (registrations, plantings, harvests, orders,
cancellations, commitments, prices, plans, and payments for the fills the run makes) goes
through every service while the run:

- SIGKILLs every service `kills_per_service` times at seeded random points, restarting each,
- stops the Kafka broker once with SIGTERM and once with SIGKILL, starting it again,
- restarts PostgreSQL once (pg_ctl restart -m fast),
- slows down and partitions the network between one service (`network_service`, matching by default)
  and the broker, and between it and PostgreSQL: that service's instance talks to both only through
  TCP links the run starts itself on loopback (farmlink/operations/chaos/faults.py; the broker gets an extra listener
  whose advertised port is the link's, so every request of its Kafka clients goes through the link).
  `kafka-latency` and `postgres-latency` hold each chunk `latency` seconds each way for `hold`
  seconds; `kafka-partition` and `postgres-partition` pass nothing either way for `hold` seconds
  (open connections stall, new ones get no answer), then heal,
- fills PostgreSQL's WAL volume (`wal-full`): for the run, pg_wal lives on a small tmpfs of its own
  (root only; moved back onto disk at the end); the run fills it to the last byte and keeps it full
  for `hold` seconds (the server PANICs at its next WAL segment and stops), then frees it and starts
  the server again, as an operator would,

and meanwhile supervises the services the way a process manager would (a service that exits
by itself is started again and counted). Afterwards it checks, from the services' own
tables and the matcher's journal: every input has exactly one outcome in its service's inbox
(none lost), every recorded input reached the journal exactly once, no fill was made or
settled twice, no payment was split twice; and `farmlink audit` (PostgreSQL, reconciled
with Kafka) is clean with the same state hash as a fresh replay of the Kafka topics.

Recovery times, per fault (`Recovery`): for a kill, a broker stop and the PostgreSQL restart,
`back_s` is the time until the component runs again and `first_outcome_s` the time until the
first new input outcome, both from the fault. For a network fault and the full WAL volume,
`held_s` is how long the fault was held, and both times count from the heal (the freed volume):
`back_s` until the faulted component works again (the service under the network fault records
its first new event; PostgreSQL accepts connections), `first_outcome_s` until the first new input
outcome. `notes` says what the fault did meanwhile (events the service recorded while its link
was cut or slow, the link's connections and cuts; the server's ENOSPC log lines and whether it
stopped). docs/benchmarks.md has the figures of full runs.

Loopback only, local infrastructure only, and it stops by itself.

The modules, each importing only those above it:

    wire.py      each input of the workload (farmlink/operations/workload.py) encoded for Kafka, signed
    plan.py      the faults (Fault, NETWORK_FAULTS, FaultOptions) and plan_faults
    report.py    Recovery, ChaosReport, and the proofs (ProofMixin: lost, duplicated, audit)
    inflict.py   inflicting each fault and measuring its recovery (InflictMixin), the fault listener's ports
    run.py       ChaosRun (services, sender, payments, supervision) and run_chaos
"""

from farmlink.operations.chaos.inflict import (
    HOLD,
    KAFKA_FAULT_LISTENER_OFFSET,
    KAFKA_LINK_OFFSET,
    POSTGRES_LINK_OFFSET,
    RECOVER,
    RECOVERY_WINDOW_S,
    WAL_VOLUME_MB,
    InflictMixin,
    ask_for_fault_listener,
)
from farmlink.operations.chaos.plan import NETWORK_FAULTS, NO_FAULTS_BEYOND_KILL, Fault, FaultOptions, plan_faults
from farmlink.operations.chaos.report import SOURCE_SCHEMAS, ChaosReport, ProofMixin, Recovery
from farmlink.operations.chaos.run import PAYMENT_SHARE, PAYMENT_WAIT_S, PROBE_IN_FLIGHT, SEND_TIMEOUT_S, ChaosRun, Say, run_chaos
from farmlink.operations.chaos.wire import INPUT_SERVICES, encode

__all__ = [
    # run.py: the run
    "ChaosRun",
    "PAYMENT_SHARE",
    "PAYMENT_WAIT_S",
    "PROBE_IN_FLIGHT",
    "SEND_TIMEOUT_S",
    "Say",
    "run_chaos",
    # wire.py
    "INPUT_SERVICES",
    "encode",
    # plan.py
    "NETWORK_FAULTS",
    "NO_FAULTS_BEYOND_KILL",
    "Fault",
    "FaultOptions",
    "plan_faults",
    # report.py
    "ChaosReport",
    "ProofMixin",
    "Recovery",
    "SOURCE_SCHEMAS",
    # inflict.py
    "HOLD",
    "InflictMixin",
    "KAFKA_FAULT_LISTENER_OFFSET",
    "KAFKA_LINK_OFFSET",
    "POSTGRES_LINK_OFFSET",
    "RECOVER",
    "RECOVERY_WINDOW_S",
    "WAL_VOLUME_MB",
    "ask_for_fault_listener",
]
