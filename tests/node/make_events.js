#!/usr/bin/env node
// Makes the events of the independent CloudEvents check
// (tests/cloudevents_check.sh), from the specification's own examples, and
// the file of what check_events.js must then find on the topic.
//
//   node make_events.js input tests/testdata/spec_examples.ndjson > in.ndjson
//   sigevents emit --db svc.db < in.ndjson > ids.txt
//   node make_events.js expected in.ndjson ids.txt [stored.txt] \
//       > expected.jsonl
//
// `input` writes, for every example (one per event type), six events as
// `sigevents emit` reads them ({"type", "data"} per line): the example as it
// is, then five variants whose strings, keys, arrays and objects carry
// hostile content: quotes and backslashes, control characters (NUL
// included), non-ASCII text, injection-looking and long text, empty strings
// and odd JSON values nested in objects.
//
// `expected` pairs each input line with the id `sigevents emit` printed for
// it (one per line, in input order) and writes {"id", "type", "key", "data"}
// per line. The key is the entity id, the field of the data that the
// specification's examples name the entity by. With `stored.txt`, the
// envelopes the outbox stored, one `event_id|HEX(payload)` per line as
// sqlite3 prints them, each line also gets "stored": the payload's text, the
// envelope check_events.js compares the published attributes with.
'use strict';

const fs = require('node:fs');

// The entity id of each family of event types, longest prefix first.
const KEY_FIELDS = [
  ['network.device.assigned.to.fabric', 'fabricId'],
  ['network.device.removed.from.fabric', 'fabricId'],
  ['network.device.replaced', 'oldNetworkDeviceId'],
  ['network.device.', 'networkDeviceId'],
  ['server.', 'serverId'],
  ['user.', 'userId'],
  ['instance.array.', 'instanceArrayId'],
  ['instance.', 'instanceId'],
];

function keyFieldOf(type) {
  for (const [prefix, field] of KEY_FIELDS) {
    if (type === prefix || (prefix.endsWith('.') && type.startsWith(prefix))) {
      return field;
    }
  }
  throw new Error(`no entity id field known for type ${type}`);
}

// Each variant turns a string of the example into a hostile one; `key` says
// whether the string is the entity id (which must stay non-empty).
const VARIANTS = [
  (text) => text,
  (text, key) => key ? `${text}-"q"\\b` :
    `${text} "quoted" \\back\\slash\\ \\"escaped\\" '\\u0041'`,
  (text, key) => key ? `${text}\t\n\u0001` :
    `${text}\u0000nul\u0001\u0007\b\f\n\r\t\u001b[31m\u001f\u007f`,
  (text, key) => key ? `${text}-ü-日本-🚀` :
    `${text} Ünïcödé — 日本語 — 🚀👩‍💻 — עברית — e\u0301 — ` +
    '\u2028\u2029 — \ufeff — \u{10FFFF}',
  (text, key) => key ? `${text}/../../etc/passwd` :
    `${text} </script><script>alert(1)</script> ' OR 1=1; -- %s%n ` +
    '${jndi:ldap://x} {"injected": true} ' + 'x'.repeat(3000),
  (text, key) => key ? `${text}\u0000tail` : '',
];

// Odd but valid JSON for the insides of objects, which keep their shape.
function oddValues(variant) {
  return {
    'quoted "key"\\': VARIANTS[variant]('value', false),
    'ключ': 'значение',
    integer: 42,
    negative: -7,
    fraction: 0.5,
    large: 1e21,
    yes: true,
    no: false,
    nothing: null,
    nested: [1, 'two', {three: [3, {four: 'ü'}]}, []],
  };
}

function hostile(value, variant, key) {
  if (typeof value === 'string') return VARIANTS[variant](value, key);
  if (Array.isArray(value)) {
    const items = value.map((item) => hostile(item, variant, false));
    if (variant === 5 && value.every((item) => typeof item === 'string')) {
      return []; // an empty list of ids
    }
    if (variant === 4) {
      for (let i = 0; i < 50; ++i) {
        items.push(typeof value[0] === 'string' ? `id-${i}` : {n: i});
      }
    }
    return items;
  }
  if (value !== null && typeof value === 'object') {
    const object = {};
    for (const [name, inner] of Object.entries(value)) {
      object[name] = hostile(inner, variant, false);
    }
    if (variant >= 1) Object.assign(object, oddValues(variant));
    return object;
  }
  return value;
}

function readLines(path) {
  return fs.readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
}

function makeInput(examplesPath) {
  const out = [];
  for (const line of readLines(examplesPath)) {
    const example = JSON.parse(line);
    const keyField = keyFieldOf(example.type);
    VARIANTS.forEach((_, variant) => {
      const data = {};
      for (const [name, value] of Object.entries(example.data)) {
        data[name] = hostile(value, variant, name === keyField);
      }
      out.push(JSON.stringify({type: example.type, data}));
    });
  }
  process.stdout.write(out.join('\n') + '\n');
}

// The payload of every row of the outbox, by event id, from lines
// `event_id|HEX` (sqlite3's output of SELECT event_id, hex(payload)).
function readStored(storedPath) {
  const byId = new Map();
  for (const line of readLines(storedPath)) {
    const bar = line.lastIndexOf('|');
    const id = line.slice(0, bar);
    const bytes = Buffer.from(line.slice(bar + 1), 'hex');
    const text = bytes.toString('utf8');
    if (bar < 0 || !Buffer.from(text, 'utf8').equals(bytes)) {
      throw new Error(`${storedPath}: the payload of ${id} is not UTF-8 ` +
                      'text in hex');
    }
    if (byId.has(id)) throw new Error(`${storedPath}: ${id} appears twice`);
    byId.set(id, text);
  }
  return byId;
}

function makeExpected(inputPath, idsPath, storedPath) {
  const events = readLines(inputPath).map((line) => JSON.parse(line));
  const ids = readLines(idsPath);
  if (ids.length !== events.length) {
    throw new Error(`${events.length} events were given to sigevents emit ` +
                    `but it printed ${ids.length} ids`);
  }
  const stored = storedPath === undefined ? null : readStored(storedPath);
  if (stored !== null && stored.size !== ids.length) {
    throw new Error(`the outbox holds ${stored.size} rows but sigevents ` +
                    `emit printed ${ids.length} ids`);
  }
  const out = events.map((event, i) => {
    const expected = {
      id: ids[i],
      type: event.type,
      key: event.data[keyFieldOf(event.type)],
      data: event.data,
    };
    if (stored !== null) {
      expected.stored = stored.get(ids[i]);
      if (expected.stored === undefined) {
        throw new Error(`id ${ids[i]} (${event.type}) is not in the outbox`);
      }
    }
    return JSON.stringify(expected);
  });
  process.stdout.write(out.join('\n') + '\n');
}

const [mode, ...paths] = process.argv.slice(2);
if (mode === 'input' && paths.length === 1) {
  makeInput(paths[0]);
} else if (mode === 'expected' && [2, 3].includes(paths.length)) {
  makeExpected(paths[0], paths[1], paths[2]);
} else {
  process.stderr.write(
      'usage: make_events.js input SPEC_EXAMPLES.ndjson\n' +
      '       make_events.js expected INPUT.ndjson IDS.txt [STORED.txt]\n');
  process.exit(2);
}
