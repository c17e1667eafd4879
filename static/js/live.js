// LiveState is what the page keeps of the stream besides the timelines:
// which logged events it has handled, and who is online. It draws nothing,
// so it is tested without the page (e2e/browser/modules_test.go).
//
// Messages, private messages, joins, leaves and read marks are logged: each id comes
// once, and a repeat (our own post, from its REST answer and from the
// stream) is a duplicate. Presence and large rooms' member counts are live
// state, never logged or replayed: their id is only the stream's position,
// the id of the last logged event before them, so it repeats and says
// nothing about duplicates. After every `ready` the server lists who is
// online now, one `presence` event each; anyone it leaves out is offline.

const LOGGED = new Set(['message', 'private', 'join', 'leave', 'read']);
const MAX_HANDLED = 20000;
const MAX_CHANGES = 500;

const lower = (s) => String(s || '').toLowerCase();

export class LiveState {
  constructor() {
    this.handled = new Set(); // kind:id of logged events already handled
    this.online = new Map(); // lower name -> bool, from member lists and the stream
    this.seq = 0; // counts the stream's presence changes
    this.changes = []; // recent {seq, name, online}; name null: a ready, everyone offline
  }

  // take applies what a stream event says about live state and reports
  // whether the page should go on to handle the event: false only for a
  // logged event it has handled already.
  take(kind, data) {
    if (kind === 'ready') {
      this.change(null, false);
      return true;
    }
    if (kind === 'presence') {
      this.change(lower(data.user), data.status === 'online');
      return true;
    }
    if (!LOGGED.has(kind) || data.id === undefined) return true;
    const key = `${kind}:${data.id}`;
    if (this.handled.has(key)) return false;
    this.handled.add(key);
    if (this.handled.size > MAX_HANDLED) {
      // Logged ids only grow, so the oldest keys will not come back: forget half.
      let drop = MAX_HANDLED / 2;
      for (const k of this.handled) {
        if (drop-- === 0) break;
        this.handled.delete(k);
      }
    }
    return true;
  }

  isOnline(name) {
    return this.online.get(lower(name)) ?? false;
  }

  // guess marks someone online or not when nothing is known of them yet
  // (a join carries no online flag); a member list settles it.
  guess(name, online) {
    if (!this.online.has(lower(name))) this.online.set(lower(name), online);
  }

  // listed takes the online flags of a member list requested when seq was
  // this.seq. The answer may predate changes the stream brought while it
  // was on its way (a ready among them): those are newer, so they win.
  listed(members, seq) {
    for (const m of members) this.online.set(lower(m.username), !!m.online);
    for (const c of this.changes) {
      if (c.seq > seq) this.apply(c.name, c.online);
    }
  }

  change(name, online) {
    this.changes.push({ seq: ++this.seq, name, online });
    if (this.changes.length > MAX_CHANGES) this.changes.shift();
    this.apply(name, online);
  }

  apply(name, online) {
    if (name !== null) {
      this.online.set(name, online);
      return;
    }
    for (const n of this.online.keys()) this.online.set(n, false);
  }
}
