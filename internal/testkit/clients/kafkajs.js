#!/usr/bin/env node
// KafkaJS end-to-end client for Amber's tests.
//
// Usage: NODE_PATH=.tools/node/node_modules node kafkajs.js SPEC.json
// (scripts/test-deps.sh installs kafkajs and the codec packages there).
//
// SPEC.json and the JSON line printed on stdout are described in
// kafka_python.py (same contract). Codecs: KafkaJS has only gzip built in;
// snappy (kafkajs-snappy), lz4 (lz4js, LZ4 frame format) and zstd
// (@bokuweb/zstd-wasm) are registered below from pure JS/WASM packages.
// Supports "idempotent" (idempotent: true) and "transactional" (all records
// in one transaction with transactional_id; the consumer reads committed).
//
// KafkaJS headers are an object: a duplicated key is encoded from an array
// value, so records must list the duplicates of a key next to each other for
// the header order to survive (the Go side generates them that way). A send
// reports only the base offset per partition, so "delivered" entries carry no
// key.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const fs = require('fs')
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

async function registerCodec (name) {
  switch (name) {
    case 'snappy':
      CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
      break
    case 'lz4': {
      const lz4 = require('lz4js')
      const codec = {
        async compress (encoder) { return Buffer.from(lz4.compress(encoder.buffer)) },
        async decompress (buffer) { return Buffer.from(lz4.decompress(buffer)) },
      }
      CompressionCodecs[CompressionTypes.LZ4] = () => codec
      break
    }
    case 'zstd': {
      const zstd = require('@bokuweb/zstd-wasm')
      await zstd.init()
      const codec = {
        async compress (encoder) { return Buffer.from(zstd.compress(encoder.buffer, 3)) },
        async decompress (buffer) { return Buffer.from(zstd.decompress(buffer)) },
      }
      CompressionCodecs[CompressionTypes.ZSTD] = () => codec
      break
    }
  }
}

// Headers list -> KafkaJS object; duplicates of a key become an array.
function toKafkaJSHeaders (headers) {
  const obj = {}
  for (const h of headers) {
    if (Object.prototype.hasOwnProperty.call(obj, h.key)) {
      if (!Array.isArray(obj[h.key])) obj[h.key] = [obj[h.key]]
      obj[h.key].push(h.value)
    } else {
      obj[h.key] = h.value
    }
  }
  return obj
}

function fromKafkaJSHeaders (headers) {
  const list = []
  for (const [key, v] of Object.entries(headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) {
      list.push({ key, value: one === null || one === undefined ? null : one.toString('utf8') })
    }
  }
  return list
}

function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function main () {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  const out = {
    client: 'kafkajs',
    version: require('kafkajs/package.json').version,
    delivered: [],
    consumed: [],
  }
  const deadline = Date.now() + spec.timeout_ms
  const remaining = () => Math.max(100, deadline - Date.now())

  const kafka = new Kafka({
    clientId: 'amber-e2e-kafkajs',
    brokers: [spec.bootstrap],
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { initialRetryTime: 50, retries: 8 },
  })
  let producer, consumer
  try {
    if (!(spec.compression in CODECS)) throw new Error(`unknown compression ${spec.compression}`)
    await registerCodec(spec.compression)
    const compression = CODECS[spec.compression]

    const txn = !!spec.transactional
    producer = kafka.producer({
      idempotent: !!spec.idempotent || txn,
      transactionalId: txn ? spec.transactional_id : undefined,
      maxInFlightRequests: spec.idempotent || txn ? 1 : undefined,
    })
    await withTimeout(producer.connect(), remaining(), 'producer connect')

    const messages = spec.records.map(r => ({
      key: r.key,
      value: r.value,
      headers: toKafkaJSHeaders(r.headers),
    }))
    // A few sends rather than one, so several batches per partition exist.
    const chunk = Math.max(1, Math.ceil(messages.length / 4))
    const sender = txn ? await withTimeout(producer.transaction(), remaining(), 'begin transaction') : producer
    for (let i = 0; i < messages.length; i += chunk) {
      const res = await withTimeout(sender.send({
        topic: spec.topic,
        acks: -1,
        compression,
        messages: messages.slice(i, i + chunk),
      }), remaining(), 'send')
      for (const md of res) {
        if (md.errorCode !== 0) throw new Error(`produce error code ${md.errorCode} on partition ${md.partition}`)
        out.delivered.push({ partition: md.partition, offset: Number(md.baseOffset) })
      }
    }
    if (txn) await withTimeout(sender.commit(), remaining(), 'commit transaction')
    await producer.disconnect()
    producer = undefined

    consumer = kafka.consumer({
      groupId: spec.group,
      maxWaitTimeInMs: 100,
      heartbeatInterval: 500,
      readUncommitted: false,
    })
    await withTimeout(consumer.connect(), remaining(), 'consumer connect')
    await consumer.subscribe({ topic: spec.topic, fromBeginning: true })

    const want = spec.records.length
    const next = new Map() // partition -> next offset to commit
    let done
    const allConsumed = new Promise(resolve => { done = resolve })
    if (want === 0) done()
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        out.consumed.push({
          key: message.key === null ? null : message.key.toString('utf8'),
          value: message.value === null ? null : message.value.toString('utf8'),
          headers: fromKafkaJSHeaders(message.headers),
          partition,
          offset: Number(message.offset),
        })
        const n = BigInt(message.offset) + 1n
        if (!next.has(partition) || next.get(partition) < n) next.set(partition, n)
        if (out.consumed.length >= want) done()
      },
    })
    await withTimeout(allConsumed, remaining(),
      `consume ${want} records (got ${out.consumed.length})`)
    await consumer.pause([{ topic: spec.topic }])
    await withTimeout(consumer.commitOffsets([...next].map(([partition, offset]) => ({
      topic: spec.topic, partition, offset: offset.toString(),
    }))), remaining(), 'commit offsets')
    await consumer.disconnect()
    consumer = undefined
  } catch (e) {
    console.error(e && e.stack ? e.stack : e)
    out.error = String(e && e.message ? e.message : e)
    process.stdout.write(JSON.stringify(out) + '\n')
    // Best effort: do not let a hung disconnect keep the process alive.
    setTimeout(() => process.exit(1), 1000).unref()
    await Promise.allSettled([producer && producer.disconnect(), consumer && consumer.disconnect()])
    process.exit(1)
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main()
