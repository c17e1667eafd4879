// The room browser: every room on the server from GET /api/rooms, a page at
// a time, with its member count and a Join button (or "Open" for ours).
import { el } from '../dom.js';

export function renderRoomBrowser(doc, dir, joined) {
  const list = doc.getElementById('browse-list');
  list.replaceChildren(...dir.rooms.map((r) => {
    const mine = joined.has(r.room);
    return el('li', { class: 'browse-item', attrs: { 'data-room': r.room } },
      el('span', { class: 'name', text: `#${r.room}` }),
      el('span', { class: 'count', text: `${r.members} member${r.members === 1 ? '' : 's'}` }),
      el('button', {
        class: mine ? 'link-btn' : '',
        text: mine ? 'Open' : 'Join',
        attrs: { type: 'button', 'data-action': mine ? 'open' : 'join', 'data-room': r.room, 'aria-label': `${mine ? 'Open' : 'Join'} #${r.room}` },
      }));
  }));
  if (dir.rooms.length === 0 && !dir.loading) list.replaceChildren(el('li', { class: 'nav-empty', text: dir.error || 'No rooms yet.' }));
  const more = doc.getElementById('browse-more');
  more.hidden = !dir.next && !dir.loading;
  more.disabled = dir.loading;
  more.textContent = dir.loading ? 'Loading…' : 'More rooms';
}
