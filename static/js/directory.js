// Finding rooms: the join field's suggestions and the "Browse all rooms"
// dialog, both from GET /api/rooms (views/room-browser.js draws the
// dialog). The choice of suggestions is pure, unit tested with node
// (static/_test/controllers.test.mjs).
import { el } from './dom.js';
import { renderRoomBrowser } from './views/room-browser.js';

export const ROOMS_PAGE = 50;
const SUGGEST_FROM = 100; // rooms read for suggestions
const SUGGEST = 50; // suggestions offered

// suggestions are the rooms of a GET /api/rooms page worth offering to
// join: those we are not in, the largest first.
export function suggestions(rooms, joined) {
  return rooms
    .filter((r) => r.room && !joined.has(r.room))
    .sort((a, b) => (b.members || 0) - (a.members || 0))
    .slice(0, SUGGEST);
}

export class Directory {
  // api: {rooms(limit, after)}.
  // page: {rooms(): the Map of our rooms (state.js), join(name): a promise
  //   of whether we joined, go(kind, name): open a view, sessionEnded()}.
  constructor(doc, api, page) {
    this.doc = doc;
    this.api = api;
    this.page = page;
    this.dialog = doc.getElementById('room-browser');
    this.dir = null; // {rooms, next, loading, error}: what the dialog lists
    const on = (id, type, fn) => doc.getElementById(id).addEventListener(type, fn);
    on('join-room', 'focus', () => this.suggest());
    on('browse-rooms', 'click', () => this.open());
    on('browse-more', 'click', () => this.more());
    on('browse-close', 'click', () => this.dialog.close());
    on('browse-list', 'click', (e) => this.onClick(e));
  }

  // suggest offers the server's rooms we are not in, when the join field
  // gets focus.
  async suggest() {
    let list;
    try {
      const res = await this.api.rooms(SUGGEST_FROM);
      list = (res && res.rooms) || [];
    } catch {
      return; // suggestions are a nicety
    }
    const options = suggestions(list, this.page.rooms()).map((r) => el('option', {
      attrs: { value: r.room, label: r.members ? `${r.members} member${r.members === 1 ? '' : 's'}` : null },
    }));
    this.doc.getElementById('room-suggestions').replaceChildren(...options);
  }

  open() {
    this.dir = { rooms: [], next: '', loading: false, error: '' };
    if (!this.dialog.open) this.dialog.showModal();
    this.more();
  }

  async more() {
    const dir = this.dir;
    if (!dir || dir.loading) return;
    dir.loading = true;
    renderRoomBrowser(this.doc, dir, this.page.rooms());
    try {
      const res = await this.api.rooms(ROOMS_PAGE, dir.next);
      dir.rooms.push(...((res && res.rooms) || []));
      dir.next = (res && res.next) || '';
    } catch (err) {
      if (err.status === 401) this.page.sessionEnded();
      dir.error = `Could not list the rooms: ${err.message}`;
    }
    dir.loading = false;
    if (dir === this.dir) renderRoomBrowser(this.doc, dir, this.page.rooms());
  }

  async onClick(e) {
    const button = e.target.closest('button[data-room]');
    if (!button) return;
    const name = button.dataset.room;
    if (button.dataset.action === 'join' && !(await this.page.join(name))) return;
    this.dialog.close();
    if (button.dataset.action === 'open') this.page.go('room', name);
  }
}
