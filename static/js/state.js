// The page's state of rooms and private conversations, and the reducer that
// applies to it every stream event and every REST answer. Here, and only
// here, an event changes what the page knows: the views (views/*.js) draw
// the state, the controllers (app.js and the modules it wires) fetch and send. Pure: no DOM, no network, no clock;
// reduce returns a new state and leaves the old one alone. Unit tested with
// node (static/_test/state.test.mjs).
//
// Who is online and which logged events were handled already live in
// live.js; a message's text lives in its view's Timeline (timeline.js).
import { compareIds, lower, maxId, mentionsOf } from './names.js';

// A room the user is a member of.
//   large: the server sends counts for it (`members` events), not per-user
//     notices; its member list is fetched only when asked for, page by page.
//   count, online: its member and online counts, when known.
//   members: the fetched part of its member list (lower name -> {username}),
//     or null before any page; next: the cursor of the next page ('' at the end).
//   read: the id of the newest message read (the server's read marker);
//   unread: others' messages after it; mentioned: one of them names me;
//   lastId: the newest message id known; stale: the counts need asking again.
function newRoom(name) {
  return {
    name, large: false, count: null, online: null, members: null, next: '',
    read: '0', unread: 0, mentioned: false, lastId: '0', stale: false,
  };
}

// A private conversation, keyed by the other's lower-case name.
function newConv(username) {
  return { username, read: '0', unread: 0, lastId: '0', stale: false };
}

export function initialState(me = '') {
  return {
    me,
    rooms: new Map(), // name -> room
    convs: new Map(), // lower name -> conversation
    view: null, // {kind: 'room'|'user', name}: what the page shows
    visible: true, // the page is visible (not a background tab)
    focused: true, // the page has the focus (read markers are set only then)
  };
}

const isMe = (s, name) => s.me !== '' && lower(name) === lower(s.me);

// viewing: the page shows this room or conversation to someone looking at
// it, so what arrives there is read as it arrives.
export function viewing(s, kind, name) {
  if (!s.visible || !s.view || s.view.kind !== kind) return false;
  return kind === 'room' ? s.view.name === name : lower(s.view.name) === lower(name);
}

function withRoom(s, name, change) {
  const room = s.rooms.get(name);
  if (!room) return s;
  const rooms = new Map(s.rooms);
  rooms.set(name, { ...room, ...change(room) });
  return { ...s, rooms };
}

function withConv(s, username, change) {
  const key = lower(username);
  const conv = s.convs.get(key) || newConv(username);
  const convs = new Map(s.convs);
  convs.set(key, { ...conv, ...change(conv) });
  return { ...s, convs };
}

// markerChange applies a read marker: never backwards. When it covers the
// newest message known the count is zero; otherwise unread is the server's
// count, if the marker came with one, else unknown (stale) until asked.
function markerChange(item, read, unread) {
  if (compareIds(read, item.read) < 0) return {};
  if (typeof unread === 'number') return { read, unread, mentioned: unread > 0 && item.mentioned, stale: false };
  // lastId covers every counted message once it is above the old marker
  // (a count from the server alone says how many, not up to which id).
  const known = item.unread === 0 || compareIds(item.lastId, item.read) > 0;
  if (known && compareIds(read, item.lastId) >= 0) return { read, unread: 0, mentioned: false, stale: false };
  return { read, stale: item.unread > 0 };
}

// roomEntry applies a RoomInfo of GET /api/rooms (or a read answer) to one
// of our rooms: its member count, and its read marker and unread count when
// the server keeps them.
function roomEntry(s, e) {
  if (!e || !s.rooms.has(e.room)) return s;
  return withRoom(s, e.room, (r) => {
    const change = {};
    if (typeof e.members === 'number' && (r.large || r.members === null)) change.count = e.members;
    if (typeof e.read === 'string') Object.assign(change, markerChange(r, e.read, e.unread));
    return change;
  });
}

function convEntry(s, c) {
  if (!c || !c.user) return s;
  return withConv(s, c.user, (d) => {
    const change = { username: c.user };
    if (c.last_id) change.lastId = maxId(d.lastId, c.last_id);
    if (typeof c.read === 'string') Object.assign(change, markerChange({ ...d, ...change }, c.read, c.unread));
    return change;
  });
}

function message(s, ev) {
  // Only members get a room's messages, and our own join comes first: an
  // unknown room is one we have just left.
  if (!s.rooms.has(ev.room)) return s;
  return withRoom(s, ev.room, (r) => {
    const change = { lastId: maxId(r.lastId, ev.id) };
    if (isMe(s, ev.from) || viewing(s, 'room', ev.room) || compareIds(ev.id, r.read) <= 0) return change;
    if (compareIds(ev.id, r.lastId) <= 0) return change; // counted already (history)
    change.unread = r.unread + 1;
    if (mentionsOf(ev.text || '').some((n) => isMe(s, n))) change.mentioned = true;
    return change;
  });
}

function privateMessage(s, ev) {
  const other = isMe(s, ev.from) ? ev.to : ev.from;
  return withConv(s, other, (d) => {
    const change = { lastId: maxId(d.lastId, ev.id) };
    if (isMe(s, ev.from) || viewing(s, 'user', other) || compareIds(ev.id, d.read) <= 0) return change;
    if (compareIds(ev.id, d.lastId) <= 0) return change;
    change.unread = d.unread + 1;
    return change;
  });
}

function membership(s, kind, ev) {
  if (isMe(s, ev.user)) {
    if (kind === 'leave') return leave(s, ev.room);
    if (!s.rooms.has(ev.room)) {
      const rooms = new Map(s.rooms);
      rooms.set(ev.room, newRoom(ev.room));
      s = { ...s, rooms };
    }
  }
  return withRoom(s, ev.room, (r) => {
    const change = {};
    // Notices about others come only from a room that is not large.
    if (!isMe(s, ev.user)) {
      change.large = false;
      change.online = null;
    }
    const name = lower(ev.user);
    if (r.members !== null) {
      const members = new Map(r.members);
      if (kind === 'join') members.set(name, { username: ev.user });
      else members.delete(name);
      change.members = members;
      if (r.next === '') change.count = members.size;
      else if (r.count !== null) change.count = r.count + (members.size - r.members.size);
    } else if (r.count !== null && !isMe(s, ev.user)) {
      change.count = r.count + (kind === 'join' ? 1 : -1);
    }
    return change;
  });
}

function leave(s, name) {
  if (!s.rooms.has(name)) return s;
  const rooms = new Map(s.rooms);
  rooms.delete(name);
  const view = s.view && s.view.kind === 'room' && s.view.name === name ? null : s.view;
  return { ...s, rooms, view };
}

// membersPage applies a page of GET /api/rooms/{room}/members (or the list
// in a join's answer): the first page replaces what was held.
function membersPage(s, a) {
  return withRoom(s, a.room, (r) => {
    const members = a.first || r.members === null ? new Map() : new Map(r.members);
    for (const m of a.members || []) members.set(lower(m.username), { username: m.username });
    const change = { members, next: a.next || '' };
    if (!r.large && !a.next) change.count = members.size;
    return change;
  });
}

function openView(s, view) {
  s = { ...s, view };
  if (view && view.kind === 'user') s = withConv(s, view.name, () => ({}));
  return clearViewed(s);
}

// clearViewed: what the reader sees is read, at once on this page; the
// server's marker follows (read-marks.js marks it, debounced).
function clearViewed(s) {
  const v = s.view;
  if (!v || !s.visible) return s;
  if (v.kind === 'room') return withRoom(s, v.name, () => ({ unread: 0, mentioned: false, stale: false }));
  if (!s.convs.has(lower(v.name))) return s;
  return withConv(s, v.name, () => ({ unread: 0, stale: false }));
}

// reduce applies one action. Stream events are {type: kind, data} with the
// event's kind; the rest are named after what happened:
//   session {me}                 a login (or a reset): a fresh state
//   me {rooms}                   GET /api/me: the rooms we are in
//   rooms-page {rooms}           GET /api/rooms: counts and read markers
//   conversations {conversations} GET /api/conversations
//   joined {answer}              POST .../join answered (JoinedRoom)
//   left {room}                  POST .../leave answered
//   members-page {room, members, next, first}
//   history {kind, name, messages}  a page of history was loaded
//   marked {answer}              POST .../read answered
//   counts-asked {rooms, convs}  stale counts are being asked for again
//   view {view}, visible {visible}, focus {focused}
export function reduce(s, a) {
  switch (a.type) {
    case 'session':
      return { ...initialState(a.me), visible: s.visible, focused: s.focused };
    case 'me': {
      const rooms = new Map();
      for (const name of a.rooms || []) rooms.set(name, s.rooms.get(name) || newRoom(name));
      return { ...s, rooms };
    }
    case 'rooms-page':
      return clearViewed((a.rooms || []).reduce(roomEntry, s));
    case 'conversations':
      return clearViewed((a.conversations || []).reduce(convEntry, s));
    case 'joined': {
      const { room, count, members } = a.answer;
      const rooms = new Map(s.rooms);
      const r = rooms.get(room) || newRoom(room);
      // A large room answers with its count and no list.
      const large = (members || []).length === 0 && count > 0;
      rooms.set(room, { ...r, large, count });
      s = { ...s, rooms };
      return large ? s : membersPage(s, { room, members, next: '', first: true });
    }
    case 'left':
      return leave(s, a.room);
    case 'members-page':
      return membersPage(s, a);
    case 'history': {
      let last = '0';
      for (const m of a.messages || []) last = maxId(last, m.id);
      const bump = (item) => ({ lastId: maxId(item.lastId, last) });
      if (a.kind === 'room') return withRoom(s, a.name, bump);
      return s.convs.has(lower(a.name)) ? withConv(s, a.name, bump) : s;
    }
    case 'marked': {
      const e = a.answer || {};
      if (e.room) return roomEntry(s, { room: e.room, read: e.read, unread: e.unread });
      if (e.with) return convEntry(s, { user: e.with, read: e.read, unread: e.unread });
      return s;
    }
    case 'counts-asked': {
      for (const name of a.rooms || []) s = withRoom(s, name, () => ({ stale: false }));
      for (const name of a.convs || []) s = s.convs.has(lower(name)) ? withConv(s, name, () => ({ stale: false })) : s;
      return s;
    }
    case 'view':
      return openView(s, a.view);
    case 'visible':
      return clearViewed({ ...s, visible: a.visible });
    case 'focus':
      return { ...s, focused: a.focused };

    // The stream.
    case 'message':
      return message(s, a.data);
    case 'private':
      return privateMessage(s, a.data);
    case 'join':
    case 'leave':
      return membership(s, a.type, a.data);
    case 'members':
      return withRoom(s, a.data.room, () => ({ large: true, count: a.data.members, online: a.data.online }));
    case 'read': {
      const d = a.data;
      if (d.room) return withRoom(s, d.room, (r) => markerChange(r, d.read));
      if (d.with) return s.convs.has(lower(d.with)) ? withConv(s, d.with, (c) => markerChange(c, d.read)) : s;
      return s;
    }
    default:
      return s;
  }
}

// viewKey names the open view's timeline: room:NAME or user:lower name,
// '' when none is open.
export function viewKey(s) {
  const v = s.view;
  if (!v) return '';
  return v.kind === 'room' ? `room:${v.name}` : `user:${lower(v.name)}`;
}

// viewTitle is the open view's title: #room, @user, or the site's name.
export function viewTitle(s) {
  const v = s.view;
  if (!v) return 'ssechat';
  return v.kind === 'room' ? `#${v.name}` : `@${v.name}`;
}

// toMark says which read marker the page should set now, or null: the open
// view's newest message, while someone looks at it (the page is visible and
// has the focus) and the marker is behind.
export function toMark(s) {
  const v = s.view;
  if (!v || !s.visible || !s.focused) return null;
  const item = v.kind === 'room' ? s.rooms.get(v.name) : s.convs.get(lower(v.name));
  if (!item || compareIds(item.lastId, item.read) <= 0) return null;
  return { kind: v.kind, name: v.kind === 'room' ? v.name : item.username, id: item.lastId };
}

// readOf is the read marker the page knows for a room ('room') or a
// conversation ('user'), or null when it holds neither.
export function readOf(s, kind, name) {
  const item = kind === 'room' ? s.rooms.get(name) : s.convs.get(lower(name));
  return item ? item.read : null;
}

// staleCounts lists the rooms and conversations whose unread counts a read
// marker from elsewhere made unknown: the page asks the server again.
export function staleCounts(s) {
  const rooms = [...s.rooms.values()].filter((r) => r.stale).map((r) => r.name);
  const convs = [...s.convs.values()].filter((c) => c.stale).map((c) => c.username);
  return { rooms, convs };
}

export function totalUnread(s) {
  let n = 0;
  for (const r of s.rooms.values()) n += r.unread;
  for (const c of s.convs.values()) n += c.unread;
  return n;
}
