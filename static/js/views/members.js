// The members panel. A room that is not large lists its members with live
// online dots. A large room shows the counts its `members` events bring;
// its list is fetched only when the reader asks (the "Show members" and
// "More members" buttons), a page at a time, so that opening it or
// reconnecting costs the server nothing.
import { el } from '../dom.js';
import { lower } from '../names.js';

const drawn = new WeakMap(); // what each list shows now

export function renderMembers(doc, s, live, loading) {
  const list = doc.getElementById('member-list');
  const title = doc.getElementById('members-title');
  const more = doc.getElementById('more-members');
  const leave = doc.getElementById('leave-room');
  const v = s.view;
  const isMe = (name) => lower(name) === lower(s.me);
  more.hidden = true;
  leave.hidden = !v || v.kind !== 'room';
  if (!v) {
    list.replaceChildren();
    drawn.delete(list);
    title.textContent = 'Members';
    return;
  }
  let members;
  if (v.kind === 'room') {
    const room = s.rooms.get(v.name);
    if (!room) return;
    members = room.members ? [...room.members.values()].map(({ username }) => ({ username, online: live.isOnline(username) })) : [];
    const count = room.count ?? members.length;
    const online = room.large && typeof room.online === 'number' ? `, ${room.online} online` : '';
    title.textContent = `Members (${count}${online})`;
    if (loading) {
      more.hidden = false;
      more.disabled = true;
      more.textContent = 'Loading…';
    } else if (room.members === null || room.next) {
      more.hidden = false;
      more.disabled = false;
      more.textContent = room.members === null ? 'Show members' : 'More members';
    }
  } else {
    members = [{ username: s.me, online: true }];
    if (!isMe(v.name)) members.push({ username: v.name, online: live.isOnline(v.name) });
    title.textContent = 'In this conversation';
  }
  members.sort((a, b) => (b.online - a.online) || a.username.localeCompare(b.username));
  // Rebuilt only when it changed: a rebuild under the pointer eats a click.
  const key = JSON.stringify([s.me, members]);
  if (drawn.get(list) === key) return;
  drawn.set(list, key);
  list.replaceChildren(...members.map((m) => {
    const inner = isMe(m.username)
      ? el('span', { class: 'name', text: `${m.username} (you)` })
      : el('a', { class: 'name', text: m.username, attrs: { href: `#/user/${encodeURIComponent(m.username)}`, title: `Message @${m.username}` } });
    return el('li', { class: m.online ? 'member online' : 'member', attrs: { 'data-user': m.username } },
      el('span', { class: m.online ? 'dot online' : 'dot', attrs: { 'aria-label': m.online ? 'online' : 'offline' } }),
      inner);
  }));
}
