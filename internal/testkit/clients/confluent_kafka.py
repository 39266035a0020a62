#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) end-to-end client for Amber's tests.

Usage: /usr/bin/python3 confluent_kafka.py SPEC.json

Run it with Debian's /usr/bin/python3 (python3-confluent-kafka); a pyenv
python3 first on PATH cannot import Debian's packages.

SPEC.json and the JSON line printed on stdout are described in
kafka_python.py (same contract). Supports every codec librdkafka has (none,
gzip, snappy, lz4, zstd), "idempotent" (enable.idempotence) and
"transactional" (all records in one transaction with "transactional_id",
consumed with isolation.level=read_committed).
"""

import json
import os
import sys
import time
import traceback

# This file is named like the package it tests: drop its own directory from
# the import path so "import confluent_kafka" finds the library, not us.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)

    import confluent_kafka
    from confluent_kafka import Consumer, KafkaException, Producer

    out = {"client": "confluent-kafka-python",
           "version": "%s (librdkafka %s)" % (confluent_kafka.version()[0],
                                              confluent_kafka.libversion()[0]),
           "delivered": [], "consumed": []}
    deadline = time.monotonic() + spec["timeout_ms"] / 1000.0

    def remaining():
        return max(0.1, deadline - time.monotonic())

    def on_error(err):
        # librdkafka reports transient connection errors here and retries;
        # log them so a failing run shows what happened.
        print("librdkafka error: %s" % err, file=sys.stderr, flush=True)

    try:
        pconf = {
            "bootstrap.servers": spec["bootstrap"],
            "client.id": "amber-e2e-confluent-kafka",
            "compression.type": spec["compression"],
            "acks": "all",
            "linger.ms": 5,
            "error_cb": on_error,
        }
        if spec.get("idempotent"):
            pconf["enable.idempotence"] = True
        txn = bool(spec.get("transactional"))
        if txn:
            pconf["transactional.id"] = spec["transactional_id"]
        producer = Producer(pconf)

        delivery_errors = []

        def on_delivery(err, msg):
            if err is not None:
                delivery_errors.append("%s: %s" % (msg.key(), err))
                return
            out["delivered"].append({"key": msg.key().decode("utf-8"),
                                     "partition": msg.partition(),
                                     "offset": msg.offset()})

        if txn:
            producer.init_transactions(remaining())
            producer.begin_transaction()
        for r in spec["records"]:
            headers = [(h["key"], h["value"].encode("utf-8")) for h in r["headers"]]
            while True:
                try:
                    producer.produce(spec["topic"], key=r["key"].encode("utf-8"),
                                     value=r["value"].encode("utf-8"),
                                     headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:  # local queue full: serve callbacks, retry
                    producer.poll(0.05)
            producer.poll(0)
        if txn:
            # commit_transaction flushes outstanding messages first.
            producer.commit_transaction(remaining())
        left = producer.flush(remaining())
        if left:
            raise TimeoutError("%d messages still undelivered after flush" % left)
        if delivery_errors:
            raise RuntimeError("delivery failed: %s" % "; ".join(delivery_errors[:5]))

        consumer = Consumer({
            "bootstrap.servers": spec["bootstrap"],
            "client.id": "amber-e2e-confluent-kafka",
            "group.id": spec["group"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 100,
            "error_cb": on_error,
        })
        consumer.subscribe([spec["topic"]])
        want = len(spec["records"])
        while len(out["consumed"]) < want:
            if time.monotonic() > deadline:
                raise TimeoutError("consumed %d of %d records before the deadline"
                                   % (len(out["consumed"]), want))
            m = consumer.poll(0.2)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            out["consumed"].append({
                "key": m.key().decode("utf-8") if m.key() is not None else None,
                "value": m.value().decode("utf-8") if m.value() is not None else None,
                "headers": [{"key": k, "value": v.decode("utf-8") if v is not None else None}
                            for k, v in (m.headers() or [])],
                "partition": m.partition(),
                "offset": m.offset(),
            })
        # Synchronous commit of the stored (consumed) positions of the assignment.
        consumer.commit(asynchronous=False)
        consumer.close()
    except Exception as e:  # report what we have, with the reason
        traceback.print_exc(file=sys.stderr)
        out["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(out), flush=True)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
