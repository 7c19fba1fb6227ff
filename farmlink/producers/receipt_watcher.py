"""What comes back for the lines `farmlink publish` sends: the receipts topic read from where it stood when publishing
began, each line's service and journal receipts, and the fills made and recorded in settlement."""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.inputs import Receipt
from contracts.topics import RECEIPTS
from events.settings import kafka_options, settings
from farmlink.producers.scenario import ScenarioLine

RECEIPT_TIMEOUT_S = 60.0
"""How long the publisher waits without hearing anything back before it gives up."""


@dataclass
class LineProgress:
    """What has come back for one published line."""

    line: ScenarioLine
    needs_journal: bool
    service_receipt: Receipt | None = None
    journal_receipt: Receipt | None = None

    @property
    def done(self) -> bool:
        if self.service_receipt is None:
            return False
        if self.service_receipt.status == "rejected" or not self.needs_journal:
            return True
        return self.journal_receipt is not None


class ReceiptWatcher:
    """Reads the receipts topic from where it stood when publishing began."""

    def __init__(self, bootstrap: str, run_id: str, principal: str):
        self.run_id = run_id
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            isolation_level="read_committed",
            **kafka_options(settings(), principal),
        )
        self.lines: dict[str, LineProgress] = {}
        self.fills_made: set[str] = set()
        self.fills_recorded: set[str] = set()
        self.changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partition = TopicPartition(RECEIPTS, 0)
        self.consumer.assign([partition])
        await self.consumer.seek_to_end(partition)
        await self.consumer.position(partition)
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()

    async def _read(self) -> None:
        async for record in self.consumer:
            receipt = Receipt.model_validate(json.loads(record.value))
            if not receipt.correlation_id.startswith(self.run_id):
                continue
            progress = self.lines.get(receipt.correlation_id)
            if receipt.status == "fill_recorded":
                self.fills_recorded.update(receipt.fill_ids)
            elif progress is not None and receipt.status == "journaled":
                progress.journal_receipt = receipt
                self.fills_made.update(receipt.fill_ids)
            elif progress is not None:
                progress.service_receipt = receipt
            self.changed.set()

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until `condition` holds; give up after RECEIPT_TIMEOUT_S without any receipt."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECEIPT_TIMEOUT_S
        while not condition():
            if self.changed.is_set():
                deadline = loop.time() + RECEIPT_TIMEOUT_S  # something came back: the services are working
            self.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"no receipt for {what} after {RECEIPT_TIMEOUT_S:.0f} s: are the services running? (farmlink up)"
                )
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
            except asyncio.TimeoutError:
                pass
