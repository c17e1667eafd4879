// The parts app.js wires together, without a page: sending (sending.js and
// api.js), read markers, the address, the forms' checks, the composer's
// wordings, room suggestions, timelines' keys. node --test static/_test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, api, retryAfterSeconds } from '../js/api.js';
import { RESEND_MS, Sender, retryDelay, retryable, wentPrivate } from '../js/sending.js';
import { LARGE_MARK_EVERY_MS, MARK_DELAY_MS, MARK_EVERY_MS, ReadMarks, withoutReadMarkers } from '../js/read-marks.js';
import { hashFor, parseRoute } from '../js/route.js';
import { checkLogin, loginFailure, roomInput, userInput } from '../js/forms.js';
import { checkText, hints, refusal, sameView } from '../js/composer.js';
import { suggestions } from '../js/directory.js';
import { historyEntry, timelineKey } from '../js/history.js';
import { autoList } from '../js/room-info.js';
import { initialState, reduce, viewKey, viewTitle } from '../js/state.js';
import { compareIds } from '../js/names.js';

// fakeTimers runs timers when told to, not by the clock: its clock (now)
// moves only when they run.
function fakeTimers() {
  const t = {
    pending: new Map(),
    next: 1,
    clock: 0,
    now: () => t.clock,
    set(fn, ms) {
      const id = t.next++;
      t.pending.set(id, { fn, ms, at: t.clock + ms });
      return id;
    },
    clear(id) {
      t.pending.delete(id);
    },
    // fire runs every timer set, whenever it is due, and returns their
    // delays; the clock moves to the last of them.
    fire() {
      const due = [...t.pending.values()];
      t.pending.clear();
      for (const d of due) t.clock = Math.max(t.clock, d.at);
      for (const d of due) d.fn();
      return due.map((d) => d.ms);
    },
    // advance moves the clock by ms, running the timers that fall due on
    // the way, each at its time.
    advance(ms) {
      const until = t.clock + ms;
      for (;;) {
        const [id, d] = [...t.pending.entries()].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0] || [];
        if (!d) break;
        t.pending.delete(id);
        t.clock = d.at;
        d.fn();
      }
      t.clock = until;
    },
  };
  return t;
}

// settle lets every promise that can settle do so.
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

// fakeSendApi answers each send with the next of answers: an event (a
// stored message) or an ApiError; it records every try.
function fakeSendApi(answers) {
  const tries = [];
  const answer = (where, name, text, key) => {
    tries.push({ where, name, text, key });
    const a = answers.shift();
    if (!a) return Promise.reject(new Error('no answer scripted'));
    return a instanceof ApiError ? Promise.reject(a) : Promise.resolve(a);
  };
  return {
    tries,
    sendRoom: (room, text, key) => answer('room', room, text, key),
    sendUser: (user, text, key) => answer('user', user, text, key),
  };
}

function newSender(answers, live = true) {
  const api = fakeSendApi(answers);
  const timers = fakeTimers();
  const got = { sent: [], refused: [], changes: 0 };
  const sender = new Sender({
    api,
    timers,
    isLive: () => live,
    onChange: () => { got.changes++; },
    onSent: (item, ev) => got.sent.push([item.text, ev.id]),
    onRefused: (item, err) => got.refused.push([item.text, err.status]),
  });
  return { sender, api, timers, got, goLive: () => { live = true; } };
}

test('the outbox sends in the order typed, one at a time, each with its own key', async () => {
  const { sender, api, got } = newSender([{ id: '1', room: 'a' }, { id: '2', room: 'a' }, { id: '3', to: 'bob', from: 'me' }]);
  sender.add('room', 'a', 'one');
  sender.add('room', 'a', 'two');
  sender.add('user', 'bob', 'three');
  await settle();
  assert.deepEqual(api.tries.map((t) => [t.where, t.text]), [['room', 'one'], ['room', 'two'], ['user', 'three']]);
  assert.equal(new Set(api.tries.map((t) => t.key)).size, 3);
  assert.deepEqual(got.sent, [['one', '1'], ['two', '2'], ['three', '3']]);
  assert.deepEqual(sender.pending('room', 'a'), []);
});

test('offline, the outbox waits; live again, it sends', async () => {
  const s = newSender([{ id: '7', room: 'a' }], false);
  s.sender.add('room', 'A', 'later');
  await settle();
  assert.equal(s.api.tries.length, 0);
  assert.equal(s.sender.pending('room', 'a').length, 1, 'pending, whatever the case of the name');
  s.goLive();
  await s.sender.flush();
  await settle();
  assert.deepEqual(s.got.sent, [['later', '7']]);
});

test('a try that was lost is repeated with the same key, and the repeat\'s answer is success', async () => {
  const { sender, api, timers, got } = newSender([
    new ApiError(0, 'Cannot reach the server.'),
    new ApiError(503, 'busy'),
    { id: '9', room: 'a', text: 'once' }, // the original event, as the server answers a repeat
  ]);
  sender.add('room', 'a', 'once');
  await settle();
  assert.equal(api.tries.length, 1);
  assert.deepEqual(sender.pending('room', 'a').map((m) => m.sending), [false]);
  assert.deepEqual(timers.fire(), [RESEND_MS]);
  await settle();
  assert.deepEqual(timers.fire(), [RESEND_MS]);
  await settle();
  assert.equal(api.tries.length, 3);
  assert.equal(new Set(api.tries.map((t) => t.key)).size, 1, 'every try has the same Idempotency-Key');
  assert.deepEqual(got.sent, [['once', '9']]);
  assert.deepEqual(got.refused, []);
  assert.deepEqual(sender.pending('room', 'a'), []);
  assert.equal(timers.pending.size, 0);
});

test('a refused message leaves the outbox and the next one goes', async () => {
  const { sender, got } = newSender([new ApiError(404, 'no such user'), { id: '4', room: 'a' }]);
  sender.add('user', 'nobody', 'hello?');
  sender.add('room', 'a', 'next');
  await settle();
  assert.deepEqual(got.refused, [['hello?', 404]]);
  assert.deepEqual(got.sent, [['next', '4']]);
});

test('after clear, an answer still on its way is dropped', async () => {
  let release;
  const api = { sendRoom: () => new Promise((resolve) => { release = resolve; }) };
  const got = [];
  const sender = new Sender({ api, timers: fakeTimers(), isLive: () => true, onChange() {}, onSent: (item) => got.push(item.text), onRefused() {} });
  sender.add('room', 'a', 'of the last user');
  sender.clear();
  release({ id: '5', room: 'a' });
  await settle();
  assert.deepEqual(got, []);
});

test('a message the server keeps failing (500) is refused, with its error, and what was typed after it goes', async () => {
  const { sender, api, timers, got } = newSender([
    new ApiError(500, 'internal error'),
    { id: '4', room: 'a' },
    { id: '5', room: 'a' },
  ]);
  const refused = [];
  sender.onRefused = (item, err) => refused.push([item.text, err.status, err.message]);
  sender.add('room', 'a', 'poison');
  sender.add('room', 'a', 'next');
  sender.add('room', 'a', 'and next');
  await settle();
  assert.deepEqual(refused, [['poison', 500, 'internal error']]);
  assert.deepEqual(got.sent, [['next', '4'], ['and next', '5']]);
  assert.equal(api.tries.length, 3, 'the refused message is not tried again');
  assert.deepEqual(sender.pending('room', 'a'), []);
  assert.equal(timers.pending.size, 0, 'no resend is scheduled');
});

test('a 429 waits its Retry-After (at least the resend interval), then repeats with the same key', async () => {
  const { sender, api, timers, got } = newSender([
    new ApiError(429, 'slow down', 30),
    new ApiError(429, 'slow down', 1),
    new ApiError(429, 'slow down'),
    new ApiError(504, 'gateway timeout'),
    { id: '8', room: 'a' },
  ]);
  sender.add('room', 'a', 'patient');
  await settle();
  const waits = [];
  for (let i = 0; i < 4; i++) {
    assert.equal(sender.pending('room', 'a').length, 1, 'still waiting in the outbox');
    waits.push(...timers.fire());
    await settle();
  }
  assert.deepEqual(waits, [30000, RESEND_MS, RESEND_MS, RESEND_MS]);
  assert.equal(new Set(api.tries.map((t) => t.key)).size, 1);
  assert.deepEqual(got.sent, [['patient', '8']]);
  assert.deepEqual(got.refused, []);
});

test('which failures are retried, and for how long they wait', () => {
  for (const status of [0, 429, 502, 503, 504]) assert.equal(retryable({ status }), true, String(status));
  for (const status of [400, 401, 403, 404, 409, 413, 422, 500, 501, 505]) assert.equal(retryable({ status }), false, String(status));
  assert.equal(retryDelay(new ApiError(429, 'x', 12)), 12000);
  assert.equal(retryDelay(new ApiError(429, 'x', 2)), RESEND_MS);
  assert.equal(retryDelay(new ApiError(0, 'x')), RESEND_MS);
  assert.equal(retryAfterSeconds('7'), 7);
  assert.equal(retryAfterSeconds(''), 0);
  assert.equal(retryAfterSeconds(null), 0);
  assert.equal(retryAfterSeconds('soon'), 0);
  assert.equal(retryAfterSeconds('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10);
  assert.equal(retryAfterSeconds('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 08:00:00 GMT')), 0);
  assert.equal(wentPrivate({ id: '1', from: 'a', to: 'b', text: '' }), true);
  assert.equal(wentPrivate({ id: '1', room: 'r', from: 'a', text: '' }), false);
});

test('api: a repeat answered 200 with the original is a success like 201, and the key is sent', async () => {
  const seen = [];
  const original = { id: '12', room: 'a', from: 'me', text: 'hi', ts: '' };
  const saved = globalThis.fetch;
  try {
    for (const status of [201, 200]) {
      globalThis.fetch = async (path, init) => {
        seen.push([path, init.method, init.headers['Idempotency-Key'], init.headers['Content-Type']]);
        return new Response(JSON.stringify(original), { status, headers: { 'Content-Type': 'application/json' } });
      };
      assert.deepEqual(await api.sendRoom('a', 'hi', 'k-1'), original);
    }
    globalThis.fetch = async () => new Response(JSON.stringify({ error: 'this key was used for another message' }), { status: 422 });
    await assert.rejects(api.sendRoom('a', 'other', 'k-1'), (err) => err.status === 422 && /another message/.test(err.message));
    globalThis.fetch = async () => new Response(JSON.stringify({ error: 'too many messages' }), { status: 429, headers: { 'Retry-After': '17' } });
    await assert.rejects(api.sendRoom('a', 'hi', 'k-2'), (err) => err.status === 429 && err.retryAfter === 17 && err.message === 'too many messages');
    globalThis.fetch = async () => { throw new TypeError('Failed to fetch'); };
    await assert.rejects(api.sendRoom('a', 'hi', 'k-1'), (err) => err.status === 0);
  } finally {
    globalThis.fetch = saved;
  }
  assert.deepEqual(seen, [
    ['/api/rooms/a/messages', 'POST', 'k-1', 'application/json'],
    ['/api/rooms/a/messages', 'POST', 'k-1', 'application/json'],
  ]);
});

const msg = (id, room, from) => ({ type: 'message', data: { id, room, from, text: 'hi', ts: '' } });

test('read markers: set once the reader settles, never again for the same id, and not at all without server support', async () => {
  let s = reduce(reduce(initialState(), { type: 'session', me: 'me' }), { type: 'me', rooms: ['a'] });
  s = reduce(s, { type: 'view', view: { kind: 'room', name: 'a' } });
  s = reduce(s, msg('3', 'a', 'bob'));
  const timers = fakeTimers();
  const calls = [];
  const marked = [];
  let fail = null;
  const marks = new ReadMarks({
    api: {
      markRoom: async (room, id) => {
        calls.push([room, id]);
        if (fail) throw fail;
        return { room, read: id, unread: 0 };
      },
    },
    state: () => s,
    onMarked: (a) => marked.push(a),
    onSessionEnded() {},
    timers,
  });
  marks.schedule();
  marks.schedule();
  assert.deepEqual(timers.fire(), [MARK_DELAY_MS], 'one timer, however often asked');
  await settle();
  assert.deepEqual(calls, [['a', '3']]);
  assert.deepEqual(marked, [{ room: 'a', read: '3', unread: 0 }]);
  // The answer not applied yet (the stream's read event is slow): the
  // marker on its way is not sent again.
  marks.schedule();
  timers.fire();
  await settle();
  assert.equal(calls.length, 1);
  // A server without read markers: tried once, then never again.
  s = reduce(s, msg('4', 'a', 'bob'));
  fail = new ApiError(404, 'no route POST /api/rooms/a/read');
  marks.schedule();
  timers.fire();
  await settle();
  assert.equal(marks.supported, false);
  marks.schedule();
  assert.equal(timers.pending.size, 0);
  assert.equal(withoutReadMarkers(new ApiError(404, 'room not found')), false);
  assert.equal(withoutReadMarkers(new ApiError(405, 'method not allowed')), true);
});

// markingPage is a page as app.js wires it: every action goes through the
// reducer and then asks for a read marker; the fake server moves markers
// (and answers) at once, and records every mark with the fake clock's time.
function markingPage(rooms = ['a', 'b']) {
  const timers = fakeTimers();
  const calls = [];
  const p = { timers, calls, s: null };
  const dispatch = (...actions) => {
    for (const a of actions) p.s = reduce(p.s, a);
    p.marks.schedule();
  };
  p.dispatch = dispatch;
  p.s = reduce(reduce(initialState(), { type: 'session', me: 'me' }), { type: 'me', rooms });
  p.marks = new ReadMarks({
    api: {
      markRoom: async (room, id) => {
        calls.push([timers.now(), room, id]);
        return { room, read: id, unread: 0 };
      },
      markConversation: async (user, id) => {
        calls.push([timers.now(), user, id]);
        return { with: user, read: id, unread: 0 };
      },
    },
    state: () => p.s,
    onMarked: (answer) => dispatch({ type: 'marked', answer }),
    onSessionEnded() {},
    timers,
  });
  // step lets the clock run ms and every answer come back.
  p.step = async (ms) => {
    timers.advance(ms);
    await settle();
  };
  return p;
}

test('read markers: while messages keep arriving, a view is marked at most once per 5 s, and the newest one at the end', async () => {
  const p = markingPage();
  p.dispatch({ type: 'view', view: { kind: 'room', name: 'a' } });
  let id = 100;
  for (let i = 0; i < 40; i++) { // a message every 500 ms for 20 s
    p.dispatch(msg(String(++id), 'a', 'bob'));
    await p.step(500);
  }
  await p.step(60000); // things settle
  const times = p.calls.map((c) => c[0]);
  assert.equal(times[0], MARK_DELAY_MS, 'the first mark once the reader settled');
  for (let i = 1; i < times.length; i++) assert.ok(times[i] - times[i - 1] >= MARK_EVERY_MS, `marks ${times[i - 1]} and ${times[i]} ms`);
  assert.ok(p.calls.length <= 1 + Math.ceil(20000 / MARK_EVERY_MS), `${p.calls.length} marks for 40 messages`);
  assert.deepEqual(p.calls.at(-1).slice(1), ['a', String(id)], 'the newest message is marked in the end');
  for (let i = 1; i < p.calls.length; i++) assert.ok(compareIds(p.calls[i][2], p.calls[i - 1][2]) > 0, 'each mark moves the marker');
  assert.equal(p.timers.pending.size, 0);
  // A message after a quiet spell is marked after the short delay again.
  p.dispatch(msg(String(++id), 'a', 'bob'));
  await p.step(MARK_DELAY_MS);
  assert.deepEqual(p.calls.at(-1), [p.timers.now(), 'a', String(id)]);
});

test('read markers: a large room is marked at most once per 30 s', async () => {
  for (const large of [{ type: 'members', data: { room: 'a', members: 5000, online: 40 } }, { type: 'rooms-page', rooms: [{ room: 'a', members: 5000 }] }]) {
    const p = markingPage();
    p.dispatch(large, { type: 'view', view: { kind: 'room', name: 'a' } });
    let id = 100;
    for (let i = 0; i < 120; i++) { // a message every 500 ms for a minute
      p.dispatch(msg(String(++id), 'a', 'bob'));
      await p.step(500);
    }
    await p.step(LARGE_MARK_EVERY_MS);
    const times = p.calls.map((c) => c[0]);
    for (let i = 1; i < times.length; i++) assert.ok(times[i] - times[i - 1] >= LARGE_MARK_EVERY_MS, `${large.type}: marks ${times[i - 1]} and ${times[i]} ms`);
    assert.ok(p.calls.length <= 3, `${large.type}: ${p.calls.length} marks in a minute`);
    assert.equal(p.calls.at(-1)[2], String(id));
  }
});

test('read markers: only while the page is visible and has the focus', async () => {
  const p = markingPage();
  p.dispatch({ type: 'view', view: { kind: 'room', name: 'a' } }, { type: 'focus', focused: false });
  p.dispatch(msg('5', 'a', 'bob'));
  await p.step(60000);
  assert.deepEqual(p.calls, [], 'not while another window has the focus');
  p.dispatch({ type: 'focus', focused: true }, { type: 'visible', visible: false });
  p.dispatch(msg('6', 'a', 'bob'));
  await p.step(60000);
  assert.deepEqual(p.calls, [], 'not while the tab is hidden');
  p.dispatch({ type: 'visible', visible: true });
  await p.step(MARK_DELAY_MS);
  assert.deepEqual(p.calls.map((c) => c.slice(1)), [['a', '6']], 'back in front: marked');
});

test('read markers: what was read is marked even after the reader moved on, and nothing the marker covers already', async () => {
  const p = markingPage();
  p.dispatch({ type: 'view', view: { kind: 'room', name: 'a' } }, msg('5', 'a', 'bob'));
  await p.step(1000);
  p.dispatch(msg('6', 'a', 'bob'));
  await p.step(1000);
  p.dispatch({ type: 'view', view: { kind: 'room', name: 'b' } }, msg('7', 'b', 'bob'));
  p.dispatch(msg('8', 'a', 'bob')); // arrives in a once nobody looks at it
  await p.step(60000);
  assert.deepEqual(p.calls, [[MARK_DELAY_MS, 'a', '5'], [2000 + MARK_DELAY_MS, 'b', '7'], [MARK_DELAY_MS + MARK_EVERY_MS, 'a', '6']]);
  // Another device marks further while a mark waits: it is not sent.
  p.dispatch(msg('9', 'b', 'bob'));
  p.dispatch({ type: 'read', data: { id: '10', user: 'me', room: 'b', read: '9' } });
  await p.step(60000);
  assert.equal(p.calls.length, 3);
  // Nor is one that another device's marker passed before it was due.
  p.dispatch(msg('11', 'b', 'bob'));
  p.dispatch({ type: 'view', view: { kind: 'room', name: 'a' } });
  p.dispatch({ type: 'read', data: { id: '12', user: 'me', room: 'b', read: '11' } });
  await p.step(60000);
  assert.deepEqual(p.calls.slice(3).map((c) => c.slice(1)), [['a', '8']], 'only a, now seen up to 8');
});

test('the address names a view', () => {
  assert.deepEqual(parseRoute('#/room/lobby'), { kind: 'room', name: 'lobby' });
  assert.deepEqual(parseRoute('#/user/Bob'), { kind: 'user', name: 'Bob' });
  assert.deepEqual(parseRoute(hashFor('room', 'a.b-c_d')), { kind: 'room', name: 'a.b-c_d' });
  for (const bad of ['', '#', '#/room/', '#/room/..', '#/room/%E0%A4%A', '#/user/a.b', '#/room/a%20b', '#/other/x']) {
    assert.equal(parseRoute(bad), null, bad);
  }
  assert.equal(hashFor('', ''), '');
});

test('the forms check what is typed', () => {
  assert.equal(checkLogin('alice', 'pw'), '');
  assert.match(checkLogin('al ice', 'pw'), /username/);
  assert.match(checkLogin('alice', ''), /password/);
  assert.match(loginFailure(new ApiError(401, 'x')), /Wrong password/);
  assert.match(loginFailure(new ApiError(429, 'x')), /Too many/);
  assert.equal(loginFailure(new ApiError(500, 'boom')), 'boom');
  assert.deepEqual(roomInput(' #lobby '), { name: 'lobby', error: '' });
  assert.match(roomInput('..').error, /room name/);
  assert.deepEqual(userInput('@bob'), { name: 'bob', error: '' });
  assert.match(userInput('bo b').error, /username/);
});

test('the composer: length in code points, hints, why a message was refused', () => {
  assert.equal(checkText('😀'.repeat(4000)), '');
  assert.match(checkText('x'.repeat(4001)), /at most 4000/);
  assert.match(hints('room', 'lobby').hint, /@name text/);
  assert.equal(hints('user', 'bob').placeholder, 'Message @bob');
  const item = { kind: 'user', name: 'nobody', text: 'hi' };
  assert.equal(refusal(item, new ApiError(404, 'not found'), true), 'Not sent: There is no user named @nobody.');
  assert.equal(refusal({ kind: 'room', name: 'a', text: 'x' }, new ApiError(403, 'not a member'), false), 'Not sent: #a: not a member');
  assert.equal(sameView({ kind: 'user', name: 'Bob' }, { kind: 'user', name: 'bob' }), true);
  assert.equal(sameView(null, item), false);
});

test('suggestions: rooms we are not in, the largest first, fifty at most', () => {
  const rooms = [{ room: 'a', members: 1 }, { room: 'mine', members: 99 }, { room: 'b', members: 5 }, { room: '', members: 7 }];
  assert.deepEqual(suggestions(rooms, new Set(['mine'])).map((r) => r.room), ['b', 'a']);
  const many = Array.from({ length: 80 }, (_, i) => ({ room: `r${i}`, members: i }));
  assert.equal(suggestions(many, new Set()).length, 50);
});

test('timelines: which one an event goes into, and history entries', () => {
  let s = reduce(reduce(initialState(), { type: 'session', me: 'Me' }), { type: 'me', rooms: ['a'] });
  assert.equal(timelineKey(s, 'message', { room: 'a' }), 'room:a');
  assert.equal(timelineKey(s, 'message', { room: 'elsewhere' }), '');
  assert.equal(timelineKey(s, 'private', { from: 'me', to: 'Bob' }), 'user:bob');
  assert.equal(timelineKey(s, 'private', { from: 'Bob', to: 'me' }), 'user:bob');
  assert.equal(timelineKey(s, 'join', { room: 'a', user: 'x' }), 'room:a');
  assert.equal(timelineKey(s, 'presence', { user: 'x' }), '');
  assert.equal(historyEntry({ id: '1', from: 'a', to: 'b', text: '' }).kind, 'private');
  assert.equal(historyEntry({ id: '2', room: 'r', from: 'a', text: '' }).kind, 'message');
  s = reduce(s, { type: 'view', view: { kind: 'user', name: 'Bob' } });
  assert.equal(viewKey(s), 'user:bob');
  assert.equal(viewTitle(s), '@Bob');
  assert.equal(viewTitle(reduce(s, { type: 'view', view: null })), 'ssechat');
});

test('a small open room lists its members by itself, a large one waits', () => {
  let s = reduce(reduce(initialState(), { type: 'session', me: 'me' }), { type: 'me', rooms: ['small', 'big'] });
  s = reduce(s, { type: 'rooms-page', rooms: [{ room: 'small', members: 3 }, { room: 'big', members: 5000 }] });
  assert.equal(autoList(reduce(s, { type: 'view', view: { kind: 'room', name: 'small' } })), 'small');
  assert.equal(autoList(reduce(s, { type: 'view', view: { kind: 'room', name: 'big' } })), '');
  assert.equal(autoList(reduce(s, { type: 'view', view: { kind: 'user', name: 'bob' } })), '');
});
