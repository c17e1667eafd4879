// The page's address: #/room/NAME opens a room, #/user/NAME a private
// conversation, so that Back works and a link opens a view. The reading of
// an address is pure, unit tested with node (static/_test/controllers.test.mjs).
import { NAME_RE, validRoom } from './names.js';

// parseRoute reads a location hash: {kind: 'room'|'user', name}, or null
// when it names no valid room or user.
export function parseRoute(hash) {
  const m = /^#\/(room|user)\/(.+)$/.exec(hash);
  if (!m) return null;
  let name;
  try {
    name = decodeURIComponent(m[2]);
  } catch {
    return null;
  }
  if (m[1] === 'room' ? !validRoom(name) : !NAME_RE.test(name)) return null;
  return { kind: m[1], name };
}

// hashFor is the hash of a view ('' for none).
export function hashFor(kind, name) {
  return kind ? `#/${kind}/${encodeURIComponent(name)}` : '';
}

// Router keeps the open view and the address in step.
export class Router {
  // page: {me(), rooms(): the Map of our rooms, open(kind, name),
  //   offerJoin(room): a link to a room we are not in, openEmpty()}.
  constructor(page) {
    this.page = page;
    window.addEventListener('hashchange', () => this.route());
    window.addEventListener('popstate', () => this.route());
  }

  // go changes the view through the address, so that Back works.
  go(kind, name) {
    const hash = hashFor(kind, name);
    if (location.hash === hash) this.route();
    else if (hash) location.hash = hash;
    else {
      history.pushState(null, '', location.pathname + location.search);
      this.route();
    }
  }

  // route opens what the address names, or else our first room.
  route() {
    const { page } = this;
    if (!page.me()) return;
    const r = parseRoute(location.hash);
    if (r && (r.kind === 'user' || page.rooms().has(r.name))) {
      page.open(r.kind, r.name);
      return;
    }
    if (r) {
      // Not a member: offer to join rather than joining from a link.
      page.offerJoin(r.name);
      return;
    }
    const first = [...page.rooms().keys()].sort()[0];
    if (first) {
      // Replace, not push: Back should not land on a URL that redirects.
      history.replaceState(null, '', hashFor('room', first));
      page.open('room', first);
    } else {
      page.openEmpty('');
    }
  }
}
