"""Reads a whole Kafka topic with kafka-python, a client that shares no code
with librdkafka, for the process tests (crash_test.py, disk_full_test.py):
what they find on the topic is not what the relay's own library says."""

import json
import time

from kafka import KafkaConsumer, TopicPartition


class TopicReadError(Exception):
    """The topic could not be read to its end; the message says why."""


def read_topic(bootstrap, topic, partitions, timeout_s):
    """Every message of `topic`, from the beginning to the end offsets as
    they are when called, as dicts with partition, offset, key, outbox and
    seq (the relay's headers, "" and None when absent), the CloudEvent id
    and the Kafka timestamp, in (partition, offset) order. Raises
    TopicReadError when the topic has not `partitions` partitions or is not
    read within `timeout_s` seconds."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, api_version=(2, 5, 0),
        enable_auto_commit=False, group_id=None,
        max_partition_fetch_bytes=4 * 1024 * 1024)
    try:
        found = consumer.partitions_for_topic(topic) or set()
        if len(found) != partitions:
            raise TopicReadError("topic %s has partitions %s, expected %d"
                                 % (topic, sorted(found), partitions))
        tps = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        messages = []
        deadline = time.time() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.time() > deadline:
                raise TopicReadError(
                    "kafka-python did not reach the end offsets %s of %s "
                    "within %ss" % (ends, topic, timeout_s))
            for tp, batch in consumer.poll(timeout_ms=200).items():
                for m in batch:
                    if m.offset >= ends[tp]:
                        continue
                    headers = dict(m.headers or [])
                    seq = headers.get("sigevents-seq")
                    messages.append({
                        "partition": m.partition,
                        "offset": m.offset,
                        "key": (m.key or b"").decode(),
                        "outbox": headers.get("sigevents-outbox",
                                              b"").decode(),
                        "seq": int(seq) if seq is not None else None,
                        "id": json.loads(m.value)["id"],
                        "timestamp": m.timestamp,
                    })
        messages.sort(key=lambda m: (m["partition"], m["offset"]))
        return messages
    finally:
        consumer.close()
