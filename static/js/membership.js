// Joining and leaving rooms, from the join field, the room browser, a
// room's Leave button. The answers go to the reducer; the join's member
// list also tells who is online (live.js).
import { roomInput, showError } from './forms.js';

export class Membership {
  // api: {join(room), leave(room)}.
  // page: {live (live.js), dispatch(action), failed(err, show),
  //   go(kind, name), forgetRoom(room), composerError(message)}.
  constructor(doc, api, page) {
    this.doc = doc;
    this.api = api;
    this.page = page;
  }

  // join joins the room typed (or chosen) and opens it; it says whether it
  // did, showing why not under the join field.
  async join(text) {
    const { name, error } = roomInput(text);
    showError(this.doc, 'join-error', error);
    if (error) return false;
    const { live } = this.page;
    const seq = live.seq;
    try {
      const res = await this.api.join(name);
      const room = res.room || name;
      live.listed(res.members || [], seq);
      this.page.dispatch({ type: 'joined', answer: { room, count: res.count, members: res.members || [] } });
      this.doc.getElementById('join-room').value = '';
      this.page.go('room', room);
      return true;
    } catch (err) {
      this.page.failed(err, (m) => showError(this.doc, 'join-error', m));
      return false;
    }
  }

  async leave(name) {
    try {
      await this.api.leave(name);
    } catch (err) {
      if (this.page.failed(err, (m) => this.page.composerError(m))) return;
      // Not a member (any more), or no such room: it is gone all the same.
      if (err.status !== 403 && err.status !== 404) return;
    }
    this.page.dispatch({ type: 'left', room: name });
    this.page.forgetRoom(name);
  }
}
