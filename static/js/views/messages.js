// The message view: the open room's or conversation's timeline, the
// messages still waiting in the outbox, and the history status line. app.js
// decides what goes in; this draws it and keeps the scroll position honest.
import { el, entryEl, messageText } from '../dom.js';

export class MessageView {
  constructor(doc) {
    this.doc = doc;
    this.box = doc.getElementById('messages');
    this.list = doc.getElementById('message-list');
    this.outbox = doc.getElementById('outbox-list');
    this.status = doc.getElementById('history-status');
    this.jump = doc.getElementById('jump-latest');
  }

  atBottom() {
    const b = this.box;
    return b.scrollHeight - b.scrollTop - b.clientHeight < 80;
  }

  toBottom() {
    this.box.scrollTop = this.box.scrollHeight;
    this.jump.hidden = true;
  }

  // show draws a whole timeline (a view was opened).
  show(tl, me, title) {
    this.list.replaceChildren(...tl.entries.map((e) => entryEl(e, me)));
    this.historyStatus(tl, title);
    this.toBottom();
  }

  clear() {
    this.list.replaceChildren();
    this.outbox.replaceChildren();
    this.status.textContent = '';
    this.jump.hidden = true;
  }

  // insert draws entry at index i of the shown timeline.
  insert(i, entry, me) {
    this.list.insertBefore(entryEl(entry, me), this.list.children[i] || null);
  }

  // dropOldest removes the n oldest entries the timeline has forgotten.
  dropOldest(n) {
    for (let k = 0; k < n && this.list.firstChild; k++) this.list.firstChild.remove();
  }

  // arrived scrolls to a new entry if the reader was at the end (or wrote
  // it), and otherwise offers to jump there, without yanking.
  arrived(pinned, mine, newest) {
    if (pinned || mine) this.toBottom();
    else if (newest) this.jump.hidden = false;
  }

  historyStatus(tl, title, text) {
    if (text !== undefined) this.status.textContent = text;
    else if (tl.loading) this.status.textContent = 'Loading…';
    else if (tl.loaded && !tl.hasMore) this.status.textContent = `This is the beginning of ${title}.`;
    else this.status.textContent = '';
  }

  // pending draws the outbox's messages for this view, after the timeline.
  pending(items, me) {
    const pinned = this.atBottom();
    this.outbox.replaceChildren(...items.map((m) => el('li', { class: 'event msg mine pending', attrs: { 'data-key': m.key } },
      el('div', { class: 'meta' },
        el('span', { class: 'from', text: me }),
        el('span', { class: 'ts pending-state', text: m.sending ? 'Sending…' : 'Waiting for the connection…' })),
      messageText('div', 'text', m.text, me))));
    if (pinned) this.toBottom();
  }
}
