// A Timeline holds the events of one room or private conversation, ordered
// by id and free of duplicates. Ids are decimal strings (JavaScript numbers
// lose precision past 2^53), so they are compared as BigInts.
import { compareIds } from './names.js';

export { compareIds };

export class Timeline {
  constructor() {
    this.entries = []; // {id, kind, data}, ascending by id
    this.keys = new Set();
    this.loaded = false; // the newest page of history has been fetched
    this.hasMore = true; // older pages may exist
    this.loading = false;
  }

  // insert adds an entry and returns its index, or -1 when it is already held.
  insert(entry) {
    const key = `${entry.kind}:${entry.id}`;
    if (this.keys.has(key)) return -1;
    this.keys.add(key);
    const { entries } = this;
    // New events almost always go at the end: search from there.
    let i = entries.length;
    while (i > 0 && compareIds(entries[i - 1].id, entry.id) > 0) i--;
    entries.splice(i, 0, entry);
    return i;
  }

  // oldestMessageId is the `before` cursor for the next history page: the
  // oldest event that came from history (join/leave lines and local notes
  // are not part of the history API).
  oldestMessageId() {
    for (const e of this.entries) {
      if (e.kind === 'message' || e.kind === 'private') return e.id;
    }
    return '';
  }

  // trimOldest forgets the n oldest entries (a long-open tab must not grow
  // without bound); scrolling back loads them again from history.
  trimOldest(n) {
    const gone = this.entries.splice(0, n);
    for (const e of gone) this.keys.delete(`${e.kind}:${e.id}`);
    if (gone.length > 0) this.hasMore = true;
    return gone.length;
  }

  clear() {
    this.entries = [];
    this.keys.clear();
    this.loaded = false;
    this.hasMore = true;
  }
}
