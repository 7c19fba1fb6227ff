"""The chaos run's fault plan: the faults it knows (`Fault`, NETWORK_FAULTS), the options beyond the kills
(`FaultOptions`), and `plan_faults`, which draws every fault's point of the run from the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from farmlink.operations import processes


NETWORK_FAULTS = ("kafka-latency", "kafka-partition", "postgres-latency", "postgres-partition")


@dataclass(frozen=True)
class Fault:
    """One planned fault, due when this fraction of the run's inputs has an outcome."""

    at: float
    kind: str  # kill-service | kafka-sigterm | kafka-sigkill | postgres-restart | NETWORK_FAULTS | wal-full
    target: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.target}".strip()


def plan_faults(
    seed: int,
    kills_per_service: int,
    services: tuple[str, ...] = processes.SERVICES,
    network: tuple[str, ...] = (),
    network_service: str = "",
    wal_full: bool = False,
) -> list[Fault]:
    """Every fault at a seeded random point between 5% and 90% of the run, in order. The network faults
    (`network`, each of NETWORK_FAULTS at most once, on `network_service`) and the full WAL volume are drawn
    after the others, so a seed strikes its kills and bounces where it did before they existed."""
    if unknown := [kind for kind in network if kind not in NETWORK_FAULTS]:
        raise ValueError(f"unknown network fault {', '.join(unknown)}; known: {', '.join(NETWORK_FAULTS)}")
    if network and network_service not in processes.SERVICES:
        raise ValueError(
            f"network faults need a service to strike, one of {', '.join(processes.SERVICES)}; not {network_service!r}"
        )
    rng = random.Random(seed * 7919 + 1)
    faults = [Fault(rng.uniform(0.05, 0.9), "kill-service", name) for name in services for _ in range(kills_per_service)]
    faults += [Fault(rng.uniform(0.05, 0.9), kind) for kind in ("kafka-sigterm", "kafka-sigkill", "postgres-restart")]
    faults += [Fault(rng.uniform(0.05, 0.9), kind, network_service) for kind in NETWORK_FAULTS if kind in network]
    if wal_full:
        faults.append(Fault(rng.uniform(0.05, 0.9), "wal-full"))
    return sorted(faults, key=lambda f: f.at)


@dataclass(frozen=True)
class FaultOptions:
    """The faults beyond kill: which network faults strike `network_service`, how slow and how long, the WAL volume."""

    network: tuple[str, ...] = NETWORK_FAULTS
    network_service: str = "matching"
    latency_s: float = 0.3
    hold_s: float = 30.0
    wal_full: bool = True


NO_FAULTS_BEYOND_KILL = FaultOptions(network=(), wal_full=False)
