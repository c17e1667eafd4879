// Names as the server accepts them (openapi.yaml, "Names and limits"), and
// the id order. Pure: tested with node (static/_test).

export const NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
export const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_TEXT = 4000; // code points, as the server counts

export const lower = (s) => String(s || '').toLowerCase();

export function validRoom(name) {
  return ROOM_RE.test(name) && name !== '.' && name !== '..';
}

// Ids are decimal strings: JavaScript numbers lose precision past 2^53.
export function compareIds(a, b) {
  const x = BigInt(a || 0);
  const y = BigInt(b || 0);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function maxId(a, b) {
  return compareIds(a, b) >= 0 ? String(a || '0') : String(b || '0');
}

// Room names sort by byte order, which for their ASCII alphabet is the
// order of the characters' codes: - . 0-9 A-Z _ a-z.
const ROOM_CHARS = '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const ROOM_MAX = 64;

// roomBefore is the greatest valid room name that sorts before name, or ''
// when none does: GET /api/rooms?after=roomBefore(x) starts at x, so a
// page can be read from any room on without reading the ones before it.
export function roomBefore(name) {
  if (name.length === 0) return '';
  const last = name[name.length - 1];
  const head = name.slice(0, -1);
  // Nothing sorts between a name and itself followed by the smallest character.
  if (last === ROOM_CHARS[0]) return validRoom(head) ? head : roomBefore(head);
  const prev = ROOM_CHARS[ROOM_CHARS.indexOf(last) - 1];
  const before = head + prev + 'z'.repeat(ROOM_MAX - name.length);
  return validRoom(before) ? before : roomBefore(before);
}

const MENTION = /(^|[^A-Za-z0-9_-])@([A-Za-z0-9_-]{1,32})(?![A-Za-z0-9_-])/g;

// mentions lists the @name mentions in text: {name, start, end}, start
// being the index of the "@".
export function mentions(text) {
  const found = [];
  for (const m of text.matchAll(MENTION)) {
    const start = m.index + m[1].length;
    found.push({ name: m[2], start, end: start + 1 + m[2].length });
  }
  return found;
}

// mentionsOf lists the names mentioned with @name in text.
export function mentionsOf(text) {
  return mentions(text).map((m) => m.name);
}
