// The sidebar: our rooms and private conversations, with unread badges
// (strong for a mention) and the conversation partners' online dots. It
// draws state.js's state; it changes nothing.
import { el } from '../dom.js';
import { compareIds, lower } from '../names.js';
import { totalUnread } from '../state.js';

// drawn holds what each list shows now: a list is rebuilt only when that
// changes, not on every event (a rebuild under the pointer eats a click).
const drawn = new WeakMap();

function unchanged(node, what) {
  const key = JSON.stringify(what);
  if (drawn.get(node) === key) return true;
  drawn.set(node, key);
  return false;
}

export function renderSidebar(doc, s, live) {
  const v = s.view;
  const roomList = doc.getElementById('room-list');
  const rooms = [...s.rooms.values()].sort((a, b) => a.name.localeCompare(b.name));
  const convs = [...s.convs.values()].sort((a, b) => compareIds(b.lastId, a.lastId) || a.username.localeCompare(b.username));
  const unread = totalUnread(s);
  doc.title = unread > 0 ? `(${unread}) ssechat` : 'ssechat';
  if (unchanged(roomList, [v, rooms.map((r) => [r.name, r.unread, r.mentioned]),
    convs.map((c) => [c.username, c.unread, live.isOnline(c.username)])])) return;
  roomList.replaceChildren(...rooms.map((r) => el('li', {},
    el('a', {
      class: 'nav-item',
      attrs: {
        href: `#/room/${encodeURIComponent(r.name)}`,
        'aria-current': v && v.kind === 'room' && v.name === r.name ? 'page' : null,
        'data-room': r.name,
      },
    },
    el('span', { class: 'hash', text: '#', attrs: { 'aria-hidden': 'true' } }),
    el('span', { class: 'name', text: r.name }),
    badge(r.unread, r.mentioned)))));
  if (rooms.length === 0) roomList.replaceChildren(el('li', { class: 'nav-empty', text: 'No rooms yet.' }));

  const dmList = doc.getElementById('dm-list');
  dmList.replaceChildren(...convs.map((c) => {
    const online = live.isOnline(c.username);
    return el('li', {},
      el('a', {
        class: 'nav-item',
        attrs: {
          href: `#/user/${encodeURIComponent(c.username)}`,
          'aria-current': v && v.kind === 'user' && lower(v.name) === lower(c.username) ? 'page' : null,
          'data-user': c.username,
        },
      },
      el('span', { class: online ? 'dot online' : 'dot', attrs: { 'aria-label': online ? 'online' : 'offline' } }),
      el('span', { class: 'name', text: c.username }),
      badge(c.unread, c.unread > 0)));
  }));
  if (convs.length === 0) dmList.replaceChildren(el('li', { class: 'nav-empty', text: 'Click a member, or type a name above.' }));
}

function badge(n, strong) {
  if (!n) return null;
  return el('span', {
    class: strong ? 'badge strong' : 'badge',
    text: n > 99 ? '99+' : String(n),
    attrs: { 'aria-label': `${n} unread` },
  });
}
