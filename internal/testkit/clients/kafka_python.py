#!/usr/bin/python3
"""kafka-python end-to-end client for Amber's tests.

Usage: /usr/bin/python3 kafka_python.py SPEC.json

Run it with Debian's /usr/bin/python3 (python3-kafka); a pyenv python3 first
on PATH cannot import Debian's packages.

SPEC.json (written by internal/testkit/external.go):
  {"bootstrap": "host:port", "topic": "...", "group": "...",
   "compression": "none|gzip|snappy|lz4|zstd",
   "idempotent": false, "transactional": false, "transactional_id": "...",
   "timeout_ms": 20000,
   "records": [{"key": "...", "value": "...",
                "headers": [{"key": "...", "value": "..."}, ...]}, ...]}

The script produces every record (keys, values and header values are UTF-8
text), then consumes the topic as a member of the consumer group until it has
seen len(records) records, commits the consumed positions synchronously and
prints one JSON line on stdout:
  {"client": "kafka-python", "version": "...",
   "delivered": [{"key": ..., "partition": p, "offset": o}, ...],
   "consumed": [{"key", "value", "headers", "partition", "offset"}, ...]}
On failure the line also carries "error" and the exit status is 1.
kafka-python 2.0.2 has no idempotent or transactional producer.
"""

import json
import logging
import sys
import time
import traceback


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    import kafka
    from kafka import KafkaConsumer, KafkaProducer

    out = {"client": "kafka-python", "version": kafka.__version__,
           "delivered": [], "consumed": []}
    deadline = time.monotonic() + spec["timeout_ms"] / 1000.0

    def remaining():
        return max(0.1, deadline - time.monotonic())

    try:
        if spec.get("idempotent") or spec.get("transactional"):
            raise RuntimeError("kafka-python %s has no idempotent/transactional producer"
                               % kafka.__version__)
        compression = spec["compression"]
        producer = KafkaProducer(
            bootstrap_servers=spec["bootstrap"],
            client_id="amber-e2e-kafka-python",
            compression_type=None if compression == "none" else compression,
            acks="all",
            linger_ms=5,
            request_timeout_ms=10000,
        )
        futures = []
        for r in spec["records"]:
            headers = [(h["key"], h["value"].encode("utf-8")) for h in r["headers"]]
            fut = producer.send(spec["topic"], key=r["key"].encode("utf-8"),
                                value=r["value"].encode("utf-8"), headers=headers)
            futures.append((r["key"], fut))
        producer.flush(timeout=remaining())
        for key, fut in futures:
            md = fut.get(timeout=remaining())
            out["delivered"].append({"key": key, "partition": md.partition,
                                     "offset": md.offset})
        producer.close(timeout=remaining())

        consumer = KafkaConsumer(
            bootstrap_servers=spec["bootstrap"],
            client_id="amber-e2e-kafka-python",
            group_id=spec["group"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            heartbeat_interval_ms=500,
        )
        consumer.subscribe([spec["topic"]])
        want = len(spec["records"])
        while len(out["consumed"]) < want:
            if time.monotonic() > deadline:
                raise TimeoutError("consumed %d of %d records before the deadline"
                                   % (len(out["consumed"]), want))
            for tp, msgs in consumer.poll(timeout_ms=200).items():
                for m in msgs:
                    out["consumed"].append({
                        "key": m.key.decode("utf-8") if m.key is not None else None,
                        "value": m.value.decode("utf-8") if m.value is not None else None,
                        "headers": [{"key": k, "value": v.decode("utf-8")}
                                    for k, v in (m.headers or [])],
                        "partition": m.partition,
                        "offset": m.offset,
                    })
        # Synchronous commit of every assigned partition's consumed position.
        consumer.commit()
        consumer.close(autocommit=False)
    except Exception as e:  # report what we have, with the reason
        traceback.print_exc(file=sys.stderr)
        out["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(out), flush=True)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
