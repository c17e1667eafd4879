// The pure parts around the reducer: names, the SSE parser, the reconnect
// policy and the outbox. node --test static/_test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareIds, mentionsOf, roomBefore, validRoom } from '../js/names.js';
import { SSEParser } from '../js/sse.js';
import { DEFAULT_RETRY_MS, SHUTDOWN_SPREAD_MS, reconnectDelay } from '../js/stream-hub.js';
import { Outbox, newKey } from '../js/outbox.js';

test('roomBefore is the greatest room name before a name', () => {
  assert.equal(roomBefore('b'), 'a' + 'z'.repeat(63));
  assert.equal(roomBefore('a-'), 'a');
  assert.equal(roomBefore('-'), '');
  assert.equal(roomBefore('.-'), '-' + 'z'.repeat(63));
  assert.equal(roomBefore('.0'), '..' + 'z'.repeat(62));
  assert.equal(roomBefore('lobby'), 'lobbx' + 'z'.repeat(59));
  // Every name sorts after its roomBefore, and nothing valid in between:
  // check against every short name over a small alphabet.
  const alphabet = ['-', '.', '0', 'Z', '_', 'a', 'z'];
  const names = [''];
  for (let len = 1; len <= 3; len++) {
    for (const n of names.filter((x) => x.length === len - 1)) for (const c of alphabet) names.push(n + c);
  }
  const valid = names.filter(validRoom).sort();
  for (const [i, name] of valid.entries()) {
    const before = roomBefore(name);
    assert.ok(before < name, `${before} < ${name}`);
    assert.ok(before === '' || validRoom(before), `${before} is a room name`);
    if (i > 0) assert.ok(valid[i - 1] <= before, `nothing between ${before} and ${name}, yet ${valid[i - 1]}`);
  }
});

test('ids compare as integers past 2^53', () => {
  assert.equal(compareIds('9007199254740993', '9007199254740992'), 1);
  assert.equal(compareIds('10', '9'), 1);
  assert.equal(compareIds('', '0'), 0);
});

test('mentions are found the way people write them', () => {
  assert.deepEqual(mentionsOf('hi @bob, mail x@example.com or @carol-2! @@dave (@eve)'), ['bob', 'carol-2', 'dave', 'eve']);
});

test('the SSE parser reads events, ids, retry and comments across chunks and line ends', () => {
  const got = [];
  const p = new SSEParser((ev) => got.push(ev));
  const text = '\uFEFF: keepalive\n\nid: 2\nevent: message\ndata: {"a":\ndata: 1}\n\r\nid: 3\r\nevent: shutdown\r\nretry: 1500\r\ndata: {}\r\n\r\nretry: x\nid\ndata\n\n';
  for (const piece of text.split(/(?<=\r)|(?=\n)|(?<=:)/)) p.feed(piece); // split inside CRLF and fields
  assert.deepEqual(got, [
    { type: 'message', data: '{"a":\n1}', id: '2' },
    { type: 'shutdown', data: '{}', id: '3' },
    { type: 'message', data: '', id: '' },
  ]);
  assert.equal(p.retry, 1500, 'an invalid retry is ignored');
});

test('after a shutdown the wait honours retry: and spreads over several seconds', () => {
  assert.equal(reconnectDelay({ why: 'shutdown', retryMs: 1000 }, () => 0), 1000);
  assert.equal(reconnectDelay({ why: 'shutdown', retryMs: 1000 }, () => 0.999999), 1000 + 0.999999 * SHUTDOWN_SPREAD_MS);
  assert.equal(reconnectDelay({ why: 'shutdown', retryMs: 8000 }, () => 0.5), 8000 + SHUTDOWN_SPREAD_MS / 2);
  assert.equal(reconnectDelay({ why: 'shutdown' }, () => 0), DEFAULT_RETRY_MS, 'no retry: seen');
  assert.ok(SHUTDOWN_SPREAD_MS >= 3000);
});

test('after errors the wait is full jitter under a doubling cap', () => {
  assert.equal(reconnectDelay({ why: 'error', failures: 1 }, () => 0.5), 500);
  assert.equal(reconnectDelay({ why: 'error', failures: 3 }, () => 0.5), 2000);
  assert.equal(reconnectDelay({ why: 'error', failures: 30 }, () => 1), 30000);
  assert.equal(reconnectDelay({ why: 'error', failures: 1 }, () => 0), 250, 'never a busy loop');
  assert.equal(reconnectDelay({ why: 'error', failures: 1, notBeforeMs: 5000 }, () => 0), 5000, 'Retry-After');
});

test('the outbox sends in order, one at a time, with one key per message', () => {
  const box = new Outbox();
  const a = box.add('room', 'lobby', 'first');
  const b = box.add('user', 'Bob', 'second');
  assert.notEqual(a.key, b.key);
  assert.match(a.key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(box.next(), a);
  a.sending = true;
  assert.equal(box.next(), null, 'the second waits for the first');
  a.sending = false;
  assert.equal(box.next(), a, 'a failed try is tried again, with the same key');
  box.remove(a.key);
  assert.equal(box.next(), b);
  assert.deepEqual(box.for('user', 'bob'), [b]);
});

test('keys are UUIDs without randomUUID too (plain http)', () => {
  const key = newKey({ getRandomValues: (b) => b.fill(0xff) });
  assert.equal(key, 'ffffffff-ffff-4fff-bfff-ffffffffffff');
});
