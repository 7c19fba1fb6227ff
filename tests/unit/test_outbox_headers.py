"""Kafka headers survive the outbox's jsonb column exactly: text, bytes that are not UTF-8, NUL characters, nulls."""

import pytest

from events.outbox import kafka_headers_of, outbox_headers

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("farmlink.producer", b"buyer:Yuping:canteen"), ("farmlink.source", b"farmlink.fills/3/1207")],
        [("binary", bytes(range(1, 256))), ("null", None)],
        [("with\x00nul", b"a\x00b"), ("plain", b"\xe6\xb2\xbf\xe6\xb2\xb3")],
    ],
)
def test_headers_read_back_from_the_outbox_are_the_headers_written(headers):
    assert kafka_headers_of(outbox_headers(headers)) == headers
