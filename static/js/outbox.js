// The outbox holds what was typed and not yet acknowledged by the server,
// in the order it was typed. Each message gets an Idempotency-Key when it
// is typed and keeps it on every try, so a try whose answer was lost and is
// sent again is stored once (the server answers the repeat with the
// original event). Typed while offline, it waits for the stream to be live
// again. It lives in memory only: the page keeps nothing in web storage.
// Pure: sending.js does the sending.

export function newKey(crypto = globalThis.crypto) {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // randomUUID exists only in secure contexts (https, localhost).
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class Outbox {
  constructor() {
    this.items = []; // {key, kind: 'room'|'user', name, text, sending}
  }

  add(kind, name, text, key = newKey()) {
    const item = { key, kind, name, text, sending: false };
    this.items.push(item);
    return item;
  }

  // next is the message to send now, or null: the oldest, unless one is
  // on its way (one at a time keeps the typed order).
  next() {
    const first = this.items[0];
    return first && !first.sending ? first : null;
  }

  remove(key) {
    this.items = this.items.filter((m) => m.key !== key);
  }

  for(kind, name) {
    return this.items.filter((m) => m.kind === kind && m.name.toLowerCase() === name.toLowerCase());
  }

  clear() {
    this.items = [];
  }
}
