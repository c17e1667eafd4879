// What the page asks the server about rooms and conversations besides their
// messages: each room's member count, read marker and unread count
// (GET /api/rooms, read from each of our rooms on, not the whole
// directory), the conversations' (GET /api/conversations), and a room's
// member list a page at a time (GET /api/rooms/{room}/members), fetched by
// itself only for a small room. Every answer goes to the reducer.
import { roomBefore } from './names.js';
import { staleCounts } from './state.js';
import { ROOMS_PAGE } from './directory.js';

export const MEMBERS_PAGE = 50;
// A room's member list is fetched by itself when the room is opened only if
// the room is known not to be large and has at most this many members; any
// other list waits for the reader to ask.
export const AUTO_LIST = 50;

// autoList is the open room whose first member page should be fetched
// unasked, or '': a small room whose list is not held (see AUTO_LIST).
export function autoList(s) {
  const v = s.view;
  if (!v || v.kind !== 'room') return '';
  const room = s.rooms.get(v.name);
  if (!room || room.large || room.members !== null || room.count === null || room.count > AUTO_LIST) return '';
  return v.name;
}

export class RoomInfo {
  // api: {rooms(limit, after), conversations(), members(room, limit, after)}.
  // page: {state(), dispatch(action), epoch(), live (live.js), redraw(),
  //   sessionEnded()}.
  constructor(api, page) {
    this.api = api;
    this.page = page;
    this.reset();
  }

  // reset forgets what is on its way (a new session, or the data reloaded).
  reset() {
    this.loading = new Set(); // rooms whose member page is on its way
    this.autoListed = new Set(); // rooms whose first member page was fetched unasked
  }

  // rooms reads the GET /api/rooms entries of the named rooms of ours,
  // skipping the rooms between them.
  async rooms(names) {
    const epoch = this.page.epoch();
    const want = [...names].sort();
    let i = 0;
    while (i < want.length) {
      let res;
      try {
        res = await this.api.rooms(ROOMS_PAGE, roomBefore(want[i]));
      } catch (err) {
        if (err.status === 401) this.page.sessionEnded();
        return; // the counts are a nicety: without them the stream's will do
      }
      if (epoch !== this.page.epoch()) return;
      const rooms = (res && res.rooms) || [];
      this.page.dispatch({ type: 'rooms-page', rooms });
      if (!res.next || rooms.length === 0) return;
      const last = rooms[rooms.length - 1].room;
      while (i < want.length && want[i] <= last) i++;
    }
  }

  async conversations() {
    const epoch = this.page.epoch();
    try {
      const res = await this.api.conversations();
      if (epoch === this.page.epoch()) this.page.dispatch({ type: 'conversations', conversations: (res && res.conversations) || [] });
    } catch (err) {
      if (err.status === 401) this.page.sessionEnded();
      // Anything else: the list fills up from live private messages.
    }
  }

  // update does what a new state asks for: the counts a read marker set on
  // another device made unknown, and the open small room's member list.
  update() {
    const { rooms, convs } = staleCounts(this.page.state());
    if (rooms.length > 0 || convs.length > 0) {
      this.page.dispatch({ type: 'counts-asked', rooms, convs });
      if (rooms.length > 0) this.rooms(rooms);
      if (convs.length > 0) this.conversations();
    }
    const name = autoList(this.page.state());
    if (name && !this.autoListed.has(name)) {
      this.autoListed.add(name); // once: a failure waits for the reader's click
      this.members(name);
    }
  }

  // members fetches the next page of a room's member list (the first when
  // none is held).
  async members(name) {
    const room = this.page.state().rooms.get(name);
    if (!room || this.loading.has(name)) return;
    const first = room.members === null;
    const epoch = this.page.epoch();
    const { live } = this.page;
    const seq = live.seq;
    this.loading.add(name);
    this.page.redraw();
    try {
      const res = await this.api.members(name, MEMBERS_PAGE, first ? '' : room.next);
      if (epoch !== this.page.epoch()) return;
      const members = (res && res.members) || [];
      live.listed(members, seq);
      this.loading.delete(name);
      this.page.dispatch({ type: 'members-page', room: name, members, next: res.next || '', first });
    } catch (err) {
      this.loading.delete(name);
      this.page.redraw();
      if (err.status === 401) this.page.sessionEnded();
    }
  }
}
