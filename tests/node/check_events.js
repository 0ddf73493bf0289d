#!/usr/bin/env node
// The independent check of what sigevents publishes: reads every message of
// a Kafka topic with kafkajs and judges it with the official CloudEvents SDK
// for JavaScript, against a file of the events that were emitted.
//
//   node check_events.js --bootstrap-servers 127.0.0.1:9092 \
//       --topic significant-events --expected expected.jsonl \
//       [--mode structured|binary]
//
// The expected file holds one {"id", "type", "key", "data", "stored"} per
// line (see make_events.js); "stored" is the envelope the outbox stored, as
// text, and may be left out in structured mode only. --mode says which
// CloudEvents content mode the relay published the topic in (structured,
// the default, or binary: `sigevents relay --binary`).
//
// Every message on the topic must, in structured mode,
// - carry the header content-type: application/cloudevents+json;
//   charset=UTF-8, once;
// - be valid UTF-8, and a JSON object with exactly the members id, time,
//   type, source, specversion, datacontenttype and data, in that order;
//   with "stored", be the stored envelope byte for byte;
// and in binary mode
// - carry the headers ce_id, ce_time, ce_type, ce_source and ce_specversion
//   and no other ce_ header (datacontenttype travels as content-type, as the
//   Kafka protocol binding says), each once, valid UTF-8, and each equal to
//   that attribute of the stored envelope; and content-type equal to its
//   datacontenttype, application/json;
// - have as its value valid UTF-8 JSON, the data;
// and in both modes
// - pass the SDK's Kafka.toEvent() (which reads binary mode when there are
//   ce_ headers and the content-type is not application/cloudevents...) and
//   then validate();
// - give an event with the attributes id, time, type, source, specversion,
//   datacontenttype and the extension partitionkey, and no other;
// - be one of the expected events, seen once: same type, the entity id as
//   the Kafka key and partitionkey, data deep-equal to what was emitted;
// - have specversion 1.0, datacontenttype application/json, the source of
//   the service that owns its type, and a UTC time with milliseconds; with
//   "stored", every attribute equal to the stored envelope's.
// Every expected event must be on the topic, every one of the 39 types of
// the specification among them. Prints a table per type, the failures and
// one summary line, which starts "OK (MODE mode)" or "FAILED (MODE mode)"
// and says how many messages passed; exits 1 on any failure, 2 on bad usage.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const {isDeepStrictEqual} = require('node:util');
const {Kafka, logLevel} = require('kafkajs');
const {Kafka: CloudEventsKafka} = require('cloudevents');

// The 39 types of the specification, in its order.
const TYPES = [
  'server.deleted', 'server.updated', 'server.credentials.updated',
  'server.registered', 'server.registration.initiated',
  'server.reregistration.initiated',
  'server.production.registration.initiated', 'server.decommissioned',
  'server.production.registered',
  'user.created', 'user.credentials.changed', 'user.suspended',
  'user.unsuspended', 'user.password.reset.requested', 'user.email.updated',
  'user.email.verified', 'user.api.key.regenerated', 'user.ssh.key.created',
  'user.ssh.key.deleted', 'user.delegate.removed', 'user.delegate.added',
  'user.unarchived', 'user.archived', 'user.2fa.enabled', 'user.2fa.disabled',
  'user.access.level.set',
  'network.device.created', 'network.device.deleted',
  'network.device.registered', 'network.device.registration.initiated',
  'network.device.archived', 'network.device.assigned.to.fabric',
  'network.device.removed.from.fabric', 'network.device.replaced',
  'network.device.credentials.updated',
  'instance.array.dns.updated', 'instance.dns.updated',
  'instance.array.dns.deleted', 'instance.dns.deleted',
];

const SOURCES = [
  ['server.', 'https://metalsoft.io/inventory-microservice'],
  ['network.device.', 'https://metalsoft.io/inventory-microservice'],
  ['user.', 'https://metalsoft.io/auth-microservice'],
  ['instance.', 'https://metalsoft.io/orchestrator-microservice'],
];

const CONTENT_TYPE = 'application/cloudevents+json; charset=UTF-8';
const DATA_CONTENT_TYPE = 'application/json';
const MEMBERS = ['id', 'time', 'type', 'source', 'specversion',
                 'datacontenttype', 'data'];
// The attributes of an event: the members but data, in that order.
const ATTRIBUTES = MEMBERS.filter((name) => name !== 'data');
// Binary mode: the attributes with a ce_ header (all but datacontenttype,
// which is the content-type header), sorted.
const CE_HEADERS = ATTRIBUTES.filter((name) => name !== 'datacontenttype')
    .map((name) => `ce_${name}`).sort();
// What the SDK's event must hold: the attributes, the data and the Kafka
// key as the extension partitionkey, sorted.
const EVENT_PROPERTIES = [...MEMBERS, 'partitionkey'].sort();
const MODES = ['structured', 'binary'];
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function usage(message) {
  process.stderr.write(
      `check_events.js: ${message}\n` +
      'usage: check_events.js --bootstrap-servers LIST --topic NAME ' +
      '--expected FILE [--mode structured|binary] [--timeout-ms N]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const options = {timeoutMs: 60000, mode: 'structured'};
  const names = {
    '--bootstrap-servers': 'servers', '--topic': 'topic',
    '--expected': 'expected', '--timeout-ms': 'timeoutMs', '--mode': 'mode',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = names[argv[i]];
    if (name === undefined || i + 1 >= argv.length) {
      usage(`bad argument ${argv[i]}`);
    }
    options[name] = name === 'timeoutMs' ? Number(argv[i + 1]) : argv[i + 1];
  }
  for (const name of ['servers', 'topic', 'expected']) {
    if (!options[name]) usage(`missing --${name}`);
  }
  if (!MODES.includes(options.mode)) usage(`bad --mode ${options.mode}`);
  return options;
}

// The expected events by id; "stored" becomes the parsed envelope, and its
// text is kept as storedText.
function readExpected(file, mode) {
  const byId = new Map();
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, index) => {
    if (line === '') return;
    const event = JSON.parse(line);
    if (byId.has(event.id)) {
      throw new Error(`${file}:${index + 1}: id ${event.id} appears twice`);
    }
    if (event.stored !== undefined) {
      event.storedText = event.stored;
      event.stored = JSON.parse(event.storedText);
    } else if (mode === 'binary') {
      throw new Error(`${file}:${index + 1}: no stored envelope, which ` +
                      'binary mode needs');
    }
    byId.set(event.id, event);
  });
  return byId;
}

// Every message of the topic, from each partition's beginning to the end
// it had when the read began.
async function readTopic(kafka, topic, timeoutMs) {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map();
  for (const {partition, high, low} of offsets) {
    if (Number(high) > Number(low)) remaining.set(partition, Number(high));
  }
  const messages = [];
  if (remaining.size === 0) return {messages, partitions: offsets.length};

  const consumer = kafka.consumer({
    groupId: `sigevents-cloudevents-check-${process.pid}-${Date.now()}`,
  });
  await consumer.connect();
  await consumer.subscribe({topic, fromBeginning: true});
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
        `timed out after ${timeoutMs} ms with ${messages.length} ` +
        `message(s) read; partitions not read to their end: ` +
        [...remaining.keys()].join(', '))), timeoutMs);
    consumer.run({
      autoCommit: false,
      eachMessage: async ({partition, message}) => {
        messages.push({partition, ...message});
        const end = remaining.get(partition);
        if (end !== undefined && Number(message.offset) + 1 >= end) {
          remaining.delete(partition);
          if (remaining.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  return {messages, partitions: offsets.length};
}

function shown(value) {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) :
    text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

// Throws, saying what differs, unless `actual` deep-equals `expected`.
function same(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new assert.AssertionError({
      message: `${what}: got ${shown(actual)}, expected ${shown(expected)}`,
    });
  }
}

// Runs a call into the SDK; its ValidationError lists what is wrong in
// `errors`, which the message leaves out.
function sdk(what, call) {
  try {
    return call();
  } catch (e) {
    const details = e.errors ? ` ${shown(e.errors)}` : '';
    throw new Error(`${what} failed: ${e.message}${details}`);
  }
}

function sourceOf(type) {
  const found = SOURCES.find(([prefix]) => type.startsWith(prefix));
  return found ? found[1] : undefined;
}

// The headers of a message as text, by name; kafkajs gives Buffers, or
// arrays of them when a name repeats.
function textHeaders(message) {
  const headers = {};
  for (const [name, value] of Object.entries(message.headers || {})) {
    assert.ok(!Array.isArray(value), `header ${name} appears more than once`);
    const text = value.toString('utf8');
    assert.ok(Buffer.from(text, 'utf8').equals(value),
              `header ${name} is not valid UTF-8`);
    headers[name] = text;
  }
  return headers;
}

// The value of a message as text, which must be valid UTF-8.
function textValue(message) {
  assert.ok(message.value !== null, 'the value is null');
  const text = message.value.toString('utf8');
  assert.ok(Buffer.from(text, 'utf8').equals(message.value),
            'the value is not valid UTF-8');
  return text;
}

// What the mode puts where, checked before the SDK reads the message.
// Returns the time as published, for the format check.
function checkStructured(headers, text) {
  same(headers['content-type'], CONTENT_TYPE, 'the content-type header');
  const raw = JSON.parse(text);
  same(Object.keys(raw), MEMBERS, 'the members');
  return raw.time;
}

function checkBinary(headers, text) {
  same(Object.keys(headers).filter((name) => name.startsWith('ce_')).sort(),
       CE_HEADERS, 'the ce_ headers');
  same(headers['content-type'], DATA_CONTENT_TYPE, 'the content-type header');
  try {
    JSON.parse(text);
  } catch (e) {
    throw new Error(`the value is not JSON: ${e.message}`);
  }
  return headers.ce_time;
}

// Judges one message; returns its expected event, or throws an
// AssertionError that says what is wrong.
function checkMessage(message, mode, expectedById, seen) {
  const headers = textHeaders(message);
  const text = textValue(message);
  const time = mode === 'binary' ? checkBinary(headers, text) :
    checkStructured(headers, text);

  // The SDK: deserialize, then validate against the CloudEvents schema.
  const key = message.key === null ? null : message.key.toString('utf8');
  const event = sdk('Kafka.toEvent()', () =>
    CloudEventsKafka.toEvent({key, value: text, headers}));
  assert.ok(!Array.isArray(event), 'a batch where one event was expected');
  same(sdk('validate()', () => event.validate()), true, 'validate()');
  same(Object.keys(event).filter((name) => event[name] !== undefined).sort(),
       EVENT_PROPERTIES, 'the attributes the SDK read');

  const expected = expectedById.get(event.id);
  assert.ok(expected !== undefined,
            `id ${event.id} (${event.type}) was never emitted`);
  assert.ok(!seen.has(event.id), `id ${event.id} is on the topic twice`);
  seen.add(event.id);

  same(event.type, expected.type, 'the type');
  same(event.specversion, '1.0', 'specversion');
  same(event.datacontenttype, DATA_CONTENT_TYPE, 'datacontenttype');
  same(event.source, sourceOf(event.type), 'the source');
  assert.ok(TIME.test(time), `the time ${shown(time)} is not UTC ` +
            'with milliseconds');
  if (expected.stored !== undefined) {
    // The SDK fills in an id, time and specversion that are missing, so
    // the headers are compared too.
    for (const name of ATTRIBUTES) {
      same(event[name], expected.stored[name],
           `${name}, against the envelope the outbox stored`);
      if (mode === 'binary' && name !== 'datacontenttype') {
        same(headers[`ce_${name}`], expected.stored[name],
             `the ce_${name} header`);
      }
    }
    same(expected.stored.data, expected.data, 'the data the outbox stored');
    if (mode === 'structured') {
      assert.ok(text === expected.storedText, 'the value is not the ' +
                'envelope the outbox stored, byte for byte');
    }
  }
  same(key, expected.key, 'the Kafka key (the entity id)');
  assert.ok(message.key.equals(Buffer.from(expected.key, 'utf8')),
            'the Kafka key\'s bytes differ from the entity id\'s');
  same(event.partitionkey, expected.key, 'partitionkey');
  same(event.data, expected.data, 'the data');
  return expected;
}

// The type and id a message says it has, for the table and the failures:
// the envelope's in structured mode, the ce_ headers' in binary mode.
function describe(message, mode) {
  try {
    if (mode === 'binary') {
      const headers = message.headers || {};
      return {
        type: headers.ce_type === undefined ? '(no ce_type)' :
          String(headers.ce_type),
        id: headers.ce_id === undefined ? '(no ce_id)' : String(headers.ce_id),
      };
    }
    const raw = JSON.parse(message.value.toString('utf8'));
    return {type: raw.type ?? '(no type)', id: raw.id ?? '(no id)'};
  } catch (e) {
    return {type: '(unparsed)', id: '(unparsed)'}; // Reported by checkMessage.
  }
}

function versionOf(name) {
  const file = path.join(__dirname, 'node_modules', name, 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).version;
}

function printSummary(counts, failures, total, options) {
  const pad = (text, width) => String(text).padStart(width);
  console.log(`${'type'.padEnd(41)} ${pad('expected', 8)} ` +
              `${pad('received', 8)} ${pad('valid', 6)}`);
  const sum = {expected: 0, received: 0, valid: 0};
  for (const type of TYPES) {
    const c = counts.get(type);
    console.log(`${type.padEnd(41)} ${pad(c.expected, 8)} ` +
                `${pad(c.received, 8)} ${pad(c.valid, 6)}`);
    for (const name of Object.keys(sum)) sum[name] += c[name];
  }
  console.log(`${'total'.padEnd(41)} ${pad(sum.expected, 8)} ` +
              `${pad(sum.received, 8)} ${pad(sum.valid, 6)}`);
  for (const failure of failures.slice(0, 50)) console.log(`FAIL ${failure}`);
  if (failures.length > 50) {
    console.log(`... and ${failures.length - 50} more failures`);
  }
  const mode = `(${options.mode} mode)`;
  console.log(failures.length === 0 ?
    `OK ${mode}: all ${total} messages on ${options.topic} passed: valid ` +
    `CloudEvents (cloudevents ${versionOf('cloudevents')}, kafkajs ` +
    `${versionOf('kafkajs')}), each an expected event, once, with its data` :
    `FAILED ${mode}: ${sum.valid} of ${total} messages on ${options.topic} ` +
    `passed, of ${sum.expected} expected; ${failures.length} failure(s)`);
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const expectedById = readExpected(options.expected, options.mode);
  const counts = new Map(TYPES.map((t) => [t, {
    expected: 0, received: 0, valid: 0}]));
  const failures = [];
  for (const event of expectedById.values()) {
    if (!counts.has(event.type)) {
      failures.push(`expected file: ${event.type} is not a type of the ` +
                    'specification');
      continue;
    }
    counts.get(event.type).expected += 1;
  }

  const kafka = new Kafka({
    clientId: 'sigevents-cloudevents-check',
    brokers: options.servers.split(','),
    logLevel: logLevel.WARN,
  });
  const {messages, partitions} =
      await readTopic(kafka, options.topic, options.timeoutMs);
  console.log(`cloudevents check (${options.mode} mode): ` +
              `${messages.length} message(s) on ${options.topic} ` +
              `(${partitions} partitions), ${expectedById.size} expected`);

  const seen = new Set();
  const failed = new Set(); // ids of messages that failed, reported already
  for (const message of messages) {
    const where = `${options.topic}[${message.partition}]@${message.offset}`;
    const {type, id} = describe(message, options.mode);
    if (counts.has(type)) counts.get(type).received += 1;
    try {
      const expected = checkMessage(message, options.mode, expectedById, seen);
      counts.get(expected.type).valid += 1;
    } catch (e) {
      failed.add(id);
      failures.push(`${where} ${type} ${id}: ${e.message.split('\n').slice(0, 4)
          .join(' / ')}`);
    }
  }
  for (const [id, event] of expectedById) {
    if (!seen.has(id) && !failed.has(id)) {
      failures.push(`${event.type} ${id}: not on the topic`);
    }
  }
  for (const [type, c] of counts) {
    if (c.expected === 0) failures.push(`${type}: no event of this type`);
  }
  printSummary(counts, failures, messages.length, options);
  return failures.length === 0 ? 0 : 1;
}

main().then((status) => process.exit(status), (error) => {
  console.error(`check_events.js: ${error.stack || error}`);
  process.exit(1);
});
