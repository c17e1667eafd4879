// The reducer (static/js/state.js): node --test static/_test
// (e2e/browser/node_test.go runs it as part of go test ./...).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, reduce, staleCounts, toMark, totalUnread, viewing } from '../js/state.js';

const run = (s, ...actions) => actions.reduce(reduce, s);
const msg = (id, room, from, text = 'hi') => ({ type: 'message', data: { id, room, from, text, ts: '' } });
const priv = (id, from, to, text = 'psst') => ({ type: 'private', data: { id, from, to, text, ts: '' } });
const start = (...rooms) => run(initialState(), { type: 'session', me: 'Me' }, { type: 'me', rooms });

test('messages from others count as unread, mine and those in the open view do not', () => {
  let s = start('a', 'b');
  s = run(s, { type: 'view', view: { kind: 'room', name: 'a' } },
    msg('1', 'a', 'bob'), msg('2', 'b', 'bob'), msg('3', 'b', 'me'), msg('4', 'b', 'bob', 'hey @ME'), msg('5', 'gone', 'bob'));
  assert.equal(s.rooms.get('a').unread, 0);
  assert.equal(s.rooms.get('b').unread, 2);
  assert.equal(s.rooms.get('b').mentioned, true);
  assert.equal(s.rooms.get('b').lastId, '4');
  assert.equal(s.rooms.has('gone'), false, 'a message of a room we are not in adds no room');
  assert.equal(totalUnread(s), 2);
});

test('a hidden page counts the open view as unread until it is seen', () => {
  let s = run(start('a'), { type: 'view', view: { kind: 'room', name: 'a' } }, { type: 'visible', visible: false });
  assert.equal(viewing(s, 'room', 'a'), false);
  s = run(s, msg('1', 'a', 'bob'));
  assert.equal(s.rooms.get('a').unread, 1);
  assert.equal(toMark(s), null, 'nothing is marked read while nobody looks');
  s = run(s, { type: 'visible', visible: true });
  assert.equal(s.rooms.get('a').unread, 0);
  assert.deepEqual(toMark(s), { kind: 'room', name: 'a', id: '1' });
  s = run(s, { type: 'focus', focused: false });
  assert.equal(toMark(s), null, 'nor while another window has the focus');
  assert.equal(run(s, { type: 'session', me: 'me' }).focused, false, 'a new session keeps it');
  assert.deepEqual(toMark(run(s, { type: 'focus', focused: true })), { kind: 'room', name: 'a', id: '1' });
});

test('the old state is left alone', () => {
  const before = start('a');
  const after = reduce(before, msg('1', 'a', 'bob'));
  assert.equal(before.rooms.get('a').unread, 0);
  assert.equal(after.rooms.get('a').unread, 1);
  assert.notEqual(before.rooms, after.rooms);
});

test('private messages make conversations, keyed case-insensitively', () => {
  let s = run(start(), priv('7', 'Bob', 'Me'), priv('8', 'me', 'bob'), priv('9', 'BOB', 'me'));
  assert.equal(s.convs.size, 1);
  const bob = s.convs.get('bob');
  assert.equal(bob.username, 'Bob');
  assert.equal(bob.unread, 2);
  assert.equal(bob.lastId, '9');
  s = run(s, { type: 'view', view: { kind: 'user', name: 'bob' } });
  assert.equal(s.convs.get('bob').unread, 0);
  assert.deepEqual(toMark(s), { kind: 'user', name: 'Bob', id: '9' });
  s = run(s, { type: 'view', view: { kind: 'user', name: 'carol' } });
  assert.ok(s.convs.has('carol'), 'opening a conversation lists it');
});

test('unread counts from the server survive a reload and new messages add to them', () => {
  let s = run(start('a', 'b'),
    { type: 'rooms-page', rooms: [{ room: 'a', members: 3, read: '10', unread: 4 }, { room: 'other', members: 9, read: '1', unread: 1 }, { room: 'b', members: 2 }] },
    { type: 'conversations', conversations: [{ user: 'Bob', last_id: '12', read: '11', unread: 1 }] });
  assert.equal(s.rooms.get('a').unread, 4);
  assert.equal(s.rooms.get('a').read, '10');
  assert.equal(s.rooms.get('a').count, 3);
  assert.equal(s.rooms.has('other'), false);
  assert.equal(s.rooms.get('b').unread, 0, 'an old server sends no markers: nothing changes');
  assert.equal(s.convs.get('bob').unread, 1);
  s = run(s, msg('13', 'a', 'bob'), msg('9', 'a', 'bob'));
  assert.equal(s.rooms.get('a').unread, 5, 'a replayed message at or below the marker is read already');
});

test('read markers never go backwards', () => {
  let s = run(start('a'), { type: 'rooms-page', rooms: [{ room: 'a', members: 2, read: '20', unread: 0 }] });
  s = run(s, { type: 'read', data: { id: '30', room: 'a', read: '15', ts: '' } });
  assert.equal(s.rooms.get('a').read, '20');
  s = run(s, { type: 'marked', answer: { room: 'a', read: '18', unread: 3 } });
  assert.equal(s.rooms.get('a').read, '20');
  assert.equal(s.rooms.get('a').unread, 0);
  s = run(s, { type: 'marked', answer: { room: 'a', read: '9007199254740993', unread: 0 } });
  s = run(s, { type: 'read', data: { id: '31', room: 'a', read: '9007199254740992', ts: '' } });
  assert.equal(s.rooms.get('a').read, '9007199254740993', 'ids past 2^53 compare exactly');
});

test('a read event from another device clears what it covers', () => {
  let s = run(start('a', 'b'), msg('5', 'a', 'bob'), msg('6', 'a', 'bob', '@me look'), priv('7', 'bob', 'me'));
  assert.equal(s.rooms.get('a').unread, 2);
  s = run(s, { type: 'read', data: { id: '8', room: 'a', read: '6', ts: '' } }, { type: 'read', data: { id: '8', with: 'BOB', read: '7', ts: '' } });
  assert.equal(s.rooms.get('a').unread, 0);
  assert.equal(s.rooms.get('a').mentioned, false);
  assert.equal(s.convs.get('bob').unread, 0);
  assert.deepEqual(staleCounts(s), { rooms: [], convs: [] });
  assert.equal(toMark(s), null);
});

test('a read event that covers part of what is unread asks the server again', () => {
  let s = run(start('a'), { type: 'rooms-page', rooms: [{ room: 'a', members: 2, read: '1', unread: 7 }] });
  s = run(s, { type: 'read', data: { id: '9', room: 'a', read: '4', ts: '' } });
  assert.deepEqual(staleCounts(s), { rooms: ['a'], convs: [] });
  s = run(s, { type: 'counts-asked', rooms: ['a'], convs: [] });
  assert.deepEqual(staleCounts(s), { rooms: [], convs: [] });
  s = run(s, { type: 'rooms-page', rooms: [{ room: 'a', members: 2, read: '4', unread: 3 }] });
  assert.equal(s.rooms.get('a').unread, 3);
});

test('the open view is marked read up to its newest message, history included', () => {
  let s = run(start('a'), { type: 'view', view: { kind: 'room', name: 'a' } });
  assert.equal(toMark(s), null, 'nothing known yet');
  s = run(s, { type: 'history', kind: 'room', name: 'a', messages: [{ id: '3' }, { id: '11' }, { id: '4' }] });
  assert.deepEqual(toMark(s), { kind: 'room', name: 'a', id: '11' });
  s = run(s, { type: 'marked', answer: { room: 'a', read: '11', unread: 0 } });
  assert.equal(toMark(s), null);
  s = run(s, msg('12', 'a', 'me'));
  assert.deepEqual(toMark(s), { kind: 'room', name: 'a', id: '12' });
});

test('a large room keeps its counts and never gets a list it did not ask for', () => {
  let s = run(start(), { type: 'joined', answer: { room: 'big', count: 101, members: [] } });
  let big = s.rooms.get('big');
  assert.equal(big.large, true);
  assert.equal(big.members, null);
  s = run(s, { type: 'members', data: { id: '5', room: 'big', members: 120, online: 40, ts: '' } });
  big = s.rooms.get('big');
  assert.deepEqual([big.count, big.online, big.members], [120, 40, null]);
  s = run(s, { type: 'members-page', room: 'big', members: [{ username: 'ann' }, { username: 'Ben' }], next: 'Ben', first: true });
  s = run(s, { type: 'members-page', room: 'big', members: [{ username: 'cal' }], next: 'cal', first: false });
  big = s.rooms.get('big');
  assert.deepEqual([...big.members.keys()], ['ann', 'ben', 'cal']);
  assert.equal(big.next, 'cal');
  assert.equal(big.count, 120, 'a page does not change the count');
  s = run(s, { type: 'join', data: { id: '6', room: 'big', user: 'dan', ts: '' } });
  big = s.rooms.get('big');
  assert.equal(big.large, false, 'a notice about someone else: the room is small again');
  assert.equal(big.count, 121);
});

test('a small room keeps its list from the join answer and the notices', () => {
  let s = run(start(), { type: 'joined', answer: { room: 'den', count: 2, members: [{ username: 'Me' }, { username: 'ann' }] } });
  s = run(s,
    { type: 'join', data: { id: '2', room: 'den', user: 'Me', ts: '' } },
    { type: 'join', data: { id: '3', room: 'den', user: 'bob', ts: '' } },
    { type: 'leave', data: { id: '4', room: 'den', user: 'ann', ts: '' } });
  const den = s.rooms.get('den');
  assert.deepEqual([...den.members.keys()].sort(), ['bob', 'me']);
  assert.equal(den.count, 2);
  assert.equal(den.large, false);
});

test('leaving a room drops it and closes its view', () => {
  let s = run(start('a', 'b'), { type: 'view', view: { kind: 'room', name: 'a' } });
  s = run(s, { type: 'leave', data: { id: '9', room: 'a', user: 'me', ts: '' } });
  assert.equal(s.rooms.has('a'), false);
  assert.equal(s.view, null);
  s = run(s, { type: 'join', data: { id: '10', room: 'c', user: 'ME', ts: '' } });
  assert.ok(s.rooms.has('c'), 'our own join adds the room');
  s = run(s, { type: 'left', room: 'b' });
  assert.deepEqual([...s.rooms.keys()], ['c']);
});

test('a new session forgets everything but whether the page is visible', () => {
  let s = run(start('a'), msg('1', 'a', 'bob'), { type: 'visible', visible: false });
  s = reduce(s, { type: 'session', me: 'other' });
  assert.equal(s.rooms.size, 0);
  assert.equal(s.me, 'other');
  assert.equal(s.visible, false);
});
