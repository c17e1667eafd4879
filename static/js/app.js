// The ssechat page. Where to look:
//   state.js          how each stream event and REST answer changes the rooms,
//                     conversations, member counts, read markers and unread counts
//   views/*.js        how that is drawn: sidebar, members, messages, room browser
//   transport.js, stream-hub.js, sse.js   the one event stream all tabs share
//   api.js            the HTTP calls; outbox.js what was typed and not yet sent
// This file ties them together: it starts the session, feeds events and
// answers to the reducer, keeps the timelines of the open views, fetches
// history and member pages when asked, sends what is typed and sets read
// markers.
import { api } from './api.js';
import { connectStream } from './transport.js';
import { Timeline } from './timeline.js';
import { LiveState } from './live.js';
import { el } from './dom.js';
import { MAX_TEXT, NAME_RE, compareIds, lower, roomBefore, validRoom } from './names.js';
import { initialState, reduce, staleCounts, toMark } from './state.js';
import { Outbox } from './outbox.js';
import { renderSidebar } from './views/sidebar.js';
import { renderMembers } from './views/members.js';
import { MessageView } from './views/messages.js';
import { renderRoomBrowser } from './views/room-browser.js';

const PAGE = 50; // messages per history page
const KEEP = 1500; // entries a timeline keeps while its reader is at the newest end
const MEMBERS_PAGE = 50;
// A room's member list is fetched by itself when the room is opened only if
// the room is known not to be large and has at most this many members; any
// other list waits for the reader to ask.
const AUTO_LIST = 50;
const ROOMS_PAGE = 50;
const MARK_DELAY_MS = 800; // read markers are set once the reader has settled
const RESEND_MS = 5000; // an unsent message is tried again this often while live

class App {
  constructor(doc) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.messages = new MessageView(doc);
    this.outbox = new Outbox();
    this.conn = 'idle';
    this.readMarkers = true; // false once the server turns out to have none
    this.fresh(initialState());
    const prefer = new URLSearchParams(location.search).get('transport') || '';
    this.transport = connectStream((m) => this.onStream(m), prefer);
  }

  // fresh starts over with state s (login, logout, reset).
  fresh(s) {
    this.state = { ...s, visible: !this.doc.hidden };
    this.live = new LiveState(); // who is online; which logged events were handled
    this.timelines = new Map(); // view key -> Timeline
    this.membersLoading = new Set(); // rooms whose member page is on its way
    this.autoListed = new Set(); // rooms whose first member page was fetched unasked
    this.marking = new Map(); // view key -> the marker id last sent
    this.epoch = (this.epoch || 0) + 1; // stale answers are dropped
  }

  get me() {
    return this.state.me;
  }

  isMe(name) {
    return this.me !== '' && lower(name) === lower(this.me);
  }

  // dispatch applies an action to the state (see state.js), then does what
  // the new state asks for: a redraw, a read marker, a count, a member page.
  dispatch(action) {
    this.state = reduce(this.state, action);
    this.scheduleRender();
    this.scheduleMark();
    this.refreshStale();
    this.autoListMembers();
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      if (!this.me) return;
      renderSidebar(this.doc, this.state, this.live);
      const v = this.state.view;
      renderMembers(this.doc, this.state, this.live, v && v.kind === 'room' && this.membersLoading.has(v.name));
    });
  }

  // ---- start, login, logout -------------------------------------------

  start() {
    this.bindUI();
    this.boot(1000);
  }

  // boot asks the server who we are. While the server cannot be reached it
  // says so and tries again, rather than showing a login form to someone
  // who is logged in.
  async boot(delay) {
    try {
      await this.enter(await api.me());
    } catch (err) {
      if (err.status === 401) {
        this.showLogin('');
        return;
      }
      const why = err.status === 0 ? 'Cannot reach the server.' : `The server answered: ${err.message}.`;
      this.$('boot').textContent = `${why} Trying again…`;
      setTimeout(() => this.boot(Math.min(delay * 2, 15000)), delay);
    }
  }

  async enter(me) {
    if (!this.isMe(me.username)) this.outbox.clear();
    this.fresh(reduce(this.state, { type: 'session', me: me.username }));
    this.$('me-name').textContent = this.me;
    this.show('chat');
    this.transport.send('start');
    const epoch = this.epoch;
    this.dispatch({ type: 'me', rooms: me.rooms || [] });
    await Promise.all([this.loadRoomInfo([...this.state.rooms.keys()]), this.loadConversations()]);
    if (epoch !== this.epoch) return;
    this.route();
  }

  show(view) {
    this.doc.body.dataset.view = view;
    this.$('boot').hidden = true;
    this.$('login-view').hidden = view !== 'login';
    this.$('chat-view').hidden = view !== 'chat';
  }

  showLogin(message) {
    this.fresh(initialState());
    this.outbox.clear();
    this.messages.clear();
    renderSidebar(this.doc, this.state, this.live);
    renderMembers(this.doc, this.state, this.live, false);
    this.show('login');
    this.showError('login-error', message);
    this.$('login-username').focus();
  }

  showError(id, message) {
    const p = this.$(id);
    p.textContent = message || '';
    p.hidden = !message;
  }

  async onLogin(e) {
    e.preventDefault();
    const username = this.$('login-username').value.trim();
    const password = this.$('login-password').value;
    if (!NAME_RE.test(username)) {
      this.showError('login-error', 'A username is 1 to 32 letters, digits, "_" or "-".');
      return;
    }
    if (password === '') {
      this.showError('login-error', 'Enter your password (or choose one, if this is a new username).');
      return;
    }
    const button = this.$('login-submit');
    button.disabled = true;
    button.textContent = 'Logging in…';
    this.entering = true;
    try {
      await api.login(username, password);
      this.$('login-password').value = '';
      this.showError('login-error', '');
      this.transport.send('restart');
      await this.enter(await api.me());
    } catch (err) {
      if (err.status === 401) this.showError('login-error', 'Wrong password for this username.');
      else if (err.status === 429) this.showError('login-error', 'Too many attempts. Wait a minute, then try again.');
      else this.showError('login-error', err.message);
    } finally {
      this.entering = false;
      button.disabled = false;
      button.textContent = 'Log in';
    }
  }

  async onLogout() {
    try {
      await api.logout();
    } catch (err) {
      if (err.status !== 401) {
        this.showError('composer-error', `Could not log out: ${err.message}`);
        return;
      }
    }
    this.transport.send('stop'); // tells the other tabs too
    this.showLogin('');
  }

  // sessionEnded is the common answer to a 401 from any call.
  sessionEnded() {
    this.transport.send('stop');
    this.showLogin('Your session has ended. Please log in again.');
  }

  // failed reports an API error; it returns true when the session is gone.
  failed(err, show) {
    if (err.status === 401) {
      this.sessionEnded();
      return true;
    }
    show(err.message);
    return false;
  }

  // ---- the stream ------------------------------------------------------

  onStream(msg) {
    switch (msg.type) {
      case 'transport':
        this.doc.body.dataset.transport = msg.kind;
        break;
      case 'status':
        this.setConn(msg.state);
        if (msg.user && this.me && !this.isMe(msg.user)) {
          // Another tab logged in as someone else: this page's state is stale.
          location.reload();
        } else if (msg.user && !this.me && !this.entering && this.doc.body.dataset.view === 'login') {
          // Another tab logged in: follow it.
          this.entering = true;
          api.me().then((me) => this.enter(me), () => {}).finally(() => { this.entering = false; });
        }
        break;
      case 'signed-out':
        if (this.me) this.showLogin('');
        break;
      case 'event':
        this.onEvent(msg.kind, msg.data);
        break;
      default:
        break;
    }
  }

  setConn(state) {
    this.conn = state;
    this.doc.body.dataset.conn = state;
    const label = { connecting: 'Connecting…', reconnecting: 'Reconnecting…' }[state] || '';
    const status = this.$('conn-status');
    status.textContent = label;
    status.className = `conn ${state}`;
    if (state === 'live') this.flush();
  }

  // onEvent takes one stream event: live.js sorts out repeats and presence,
  // state.js applies it, and the open views' timelines get the entries.
  onEvent(kind, data) {
    if (!this.me || !data) return;
    if (kind === 'reset') {
      this.onReset();
      return;
    }
    if (!this.live.take(kind, data)) return; // a logged event handled already
    this.dispatch({ type: kind, data });
    switch (kind) {
      case 'message':
        if (this.state.rooms.has(data.room)) this.addEntry(`room:${data.room}`, { id: data.id, kind, data });
        break;
      case 'private':
        this.addEntry(`user:${lower(this.isMe(data.from) ? data.to : data.from)}`, { id: data.id, kind, data });
        break;
      case 'join':
      case 'leave':
        if (kind === 'leave' && this.isMe(data.user)) this.forgetRoom(data.room);
        else this.addEntry(`room:${data.room}`, { id: data.id, kind, data });
        break;
      default:
        break;
    }
  }

  // onReset: the server could not replay what we missed, so everything we
  // hold may have a hole. Forget it and load it again.
  async onReset() {
    // Counted on <body> for the curious (and for the end-to-end tests).
    this.doc.body.dataset.resets = String(Number(this.doc.body.dataset.resets || 0) + 1);
    const view = this.state.view;
    try {
      await this.enter(await api.me());
    } catch (err) {
      if (err.status === 401) this.sessionEnded();
      return;
    }
    if (view && !this.state.view) this.openView(view.kind, view.name);
  }

  // ---- rooms, conversations, counts -----------------------------------

  // loadRoomInfo reads the GET /api/rooms entries of our rooms: member
  // counts and, where the server keeps them, read markers and unread
  // counts. It reads from each of our rooms on (see roomBefore), not every
  // room on the server.
  async loadRoomInfo(names) {
    const epoch = this.epoch;
    const want = [...names].sort();
    let i = 0;
    while (i < want.length) {
      let res;
      try {
        res = await api.rooms(ROOMS_PAGE, roomBefore(want[i]));
      } catch (err) {
        if (err.status === 401) this.sessionEnded();
        return; // the counts are a nicety: without them the stream's will do
      }
      if (epoch !== this.epoch) return;
      const rooms = (res && res.rooms) || [];
      this.dispatch({ type: 'rooms-page', rooms });
      if (!res.next || rooms.length === 0) return;
      const last = rooms[rooms.length - 1].room;
      while (i < want.length && want[i] <= last) i++;
    }
  }

  async loadConversations() {
    const epoch = this.epoch;
    try {
      const res = await api.conversations();
      if (epoch === this.epoch) this.dispatch({ type: 'conversations', conversations: (res && res.conversations) || [] });
    } catch (err) {
      if (err.status === 401) this.sessionEnded();
      // Anything else: the list fills up from live private messages.
    }
  }

  // refreshStale asks again for the counts a read marker set on another
  // device made unknown.
  refreshStale() {
    const { rooms, convs } = staleCounts(this.state);
    if (rooms.length === 0 && convs.length === 0) return;
    this.state = reduce(this.state, { type: 'counts-asked', rooms, convs });
    if (rooms.length > 0) this.loadRoomInfo(rooms);
    if (convs.length > 0) this.loadConversations();
  }

  // autoListMembers fetches the open room's first member page when the room
  // is small; see AUTO_LIST.
  autoListMembers() {
    const v = this.state.view;
    if (!v || v.kind !== 'room') return;
    const room = this.state.rooms.get(v.name);
    if (!room || room.large || room.members !== null || room.count === null || room.count > AUTO_LIST) return;
    if (this.autoListed.has(v.name)) return; // once: a failure waits for the reader's click
    this.autoListed.add(v.name);
    this.loadMembers(v.name);
  }

  // loadMembers fetches the next page of a room's member list (the first
  // when none is held).
  async loadMembers(name) {
    const room = this.state.rooms.get(name);
    if (!room || this.membersLoading.has(name)) return;
    const first = room.members === null;
    const epoch = this.epoch;
    const seq = this.live.seq;
    this.membersLoading.add(name);
    this.scheduleRender();
    try {
      const res = await api.members(name, MEMBERS_PAGE, first ? '' : room.next);
      if (epoch !== this.epoch) return;
      const members = (res && res.members) || [];
      this.live.listed(members, seq);
      this.membersLoading.delete(name);
      this.dispatch({ type: 'members-page', room: name, members, next: res.next || '', first });
    } catch (err) {
      this.membersLoading.delete(name);
      this.scheduleRender();
      if (err.status === 401) this.sessionEnded();
    }
  }

  async joinRoom(name) {
    name = name.trim().replace(/^#/, '');
    if (!validRoom(name)) {
      this.showError('join-error', 'A room name is 1 to 64 letters, digits, ".", "_" or "-".');
      return false;
    }
    this.showError('join-error', '');
    const seq = this.live.seq;
    try {
      const res = await api.join(name);
      this.live.listed(res.members || [], seq);
      this.dispatch({ type: 'joined', answer: { room: res.room || name, count: res.count, members: res.members || [] } });
      this.$('join-room').value = '';
      this.go('room', res.room || name);
      return true;
    } catch (err) {
      this.failed(err, (m) => this.showError('join-error', m));
      return false;
    }
  }

  async leaveRoom(name) {
    try {
      await api.leave(name);
    } catch (err) {
      if (this.failed(err, (m) => this.showError('composer-error', m))) return;
      if (err.status !== 403 && err.status !== 404) return;
    }
    this.dispatch({ type: 'left', room: name });
    this.forgetRoom(name);
  }

  forgetRoom(name) {
    this.timelines.delete(`room:${name}`);
    if (!this.state.view) this.go('', '');
  }

  // suggestRooms offers the server's rooms we are not in, when the join
  // field gets focus: the first page, the largest first.
  async suggestRooms() {
    let list;
    try {
      const res = await api.rooms(100);
      list = (res && res.rooms) || [];
    } catch {
      return; // suggestions are a nicety
    }
    const options = list
      .filter((r) => r.room && !this.state.rooms.has(r.room))
      .sort((a, b) => (b.members || 0) - (a.members || 0))
      .slice(0, 50)
      .map((r) => el('option', {
        attrs: { value: r.room, label: r.members ? `${r.members} member${r.members === 1 ? '' : 's'}` : null },
      }));
    this.$('room-suggestions').replaceChildren(...options);
  }

  // ---- the room browser ------------------------------------------------

  openBrowser() {
    this.directory = { rooms: [], next: '', loading: false, error: '' };
    const dialog = this.$('room-browser');
    if (!dialog.open) dialog.showModal();
    this.browseMore();
  }

  async browseMore() {
    const dir = this.directory;
    if (!dir || dir.loading) return;
    dir.loading = true;
    renderRoomBrowser(this.doc, dir, this.state.rooms);
    try {
      const res = await api.rooms(ROOMS_PAGE, dir.next);
      dir.rooms.push(...((res && res.rooms) || []));
      dir.next = (res && res.next) || '';
    } catch (err) {
      if (err.status === 401) this.sessionEnded();
      dir.error = `Could not list the rooms: ${err.message}`;
    }
    dir.loading = false;
    if (dir === this.directory) renderRoomBrowser(this.doc, dir, this.state.rooms);
  }

  async onBrowserClick(e) {
    const button = e.target.closest('button[data-room]');
    if (!button) return;
    const name = button.dataset.room;
    if (button.dataset.action === 'join' && !(await this.joinRoom(name))) return;
    this.$('room-browser').close();
    if (button.dataset.action === 'open') this.go('room', name);
  }

  // ---- routing and views -----------------------------------------------

  // go changes the view through the URL, so that Back works and a link to
  // #/room/lobby opens that room.
  go(kind, name) {
    const hash = kind ? `#/${kind}/${encodeURIComponent(name)}` : '';
    if (location.hash === hash) this.route();
    else if (hash) location.hash = hash;
    else {
      history.pushState(null, '', location.pathname + location.search);
      this.route();
    }
  }

  route() {
    if (!this.me) return;
    const m = /^#\/(room|user)\/(.+)$/.exec(location.hash);
    if (m) {
      let name = '';
      try {
        name = decodeURIComponent(m[2]);
      } catch {
        name = '';
      }
      if (m[1] === 'room' && this.state.rooms.has(name)) {
        this.openView('room', name);
        return;
      }
      if (m[1] === 'room' && validRoom(name)) {
        // Not a member: offer to join rather than joining from a link.
        this.openEmpty(`You are not in #${name}. Press Join to enter it.`);
        this.$('join-room').value = name;
        this.$('join-room').focus();
        return;
      }
      if (m[1] === 'user' && NAME_RE.test(name)) {
        this.openView('user', name);
        return;
      }
    }
    const first = [...this.state.rooms.keys()].sort()[0];
    if (first) {
      // Replace, not push: Back should not land on a URL that redirects.
      history.replaceState(null, '', `#/room/${encodeURIComponent(first)}`);
      this.openView('room', first);
    } else {
      this.openEmpty('');
    }
  }

  viewKey() {
    const v = this.state.view;
    if (!v) return '';
    return v.kind === 'room' ? `room:${v.name}` : `user:${lower(v.name)}`;
  }

  title() {
    const v = this.state.view;
    if (!v) return 'ssechat';
    return v.kind === 'room' ? `#${v.name}` : `@${v.name}`;
  }

  openEmpty(message) {
    this.dispatch({ type: 'view', view: null });
    this.$('view-title').textContent = 'ssechat';
    this.messages.clear();
    const empty = this.$('empty-state');
    if (message) empty.textContent = message;
    else empty.replaceChildren('Join a room (for example ', el('em', { text: 'lobby' }), ') to start chatting.');
    empty.hidden = false;
    this.$('composer').hidden = true;
    this.$('composer-hint').textContent = '';
  }

  async openView(kind, name) {
    if (kind === 'user') {
      const known = this.state.convs.get(lower(name));
      if (known) name = known.username;
    }
    this.dispatch({ type: 'view', view: { kind, name } });
    const key = this.viewKey();
    this.$('view-title').textContent = this.title();
    this.$('empty-state').hidden = true;
    this.$('composer').hidden = false;
    this.$('composer-text').placeholder = kind === 'room' ? `Message #${name}` : `Message @${name}`;
    this.$('composer-hint').textContent = kind === 'room'
      ? 'Enter sends · Shift+Enter adds a line · "@name text" sends privately'
      : 'Enter sends · Shift+Enter adds a line';
    this.showError('composer-error', '');
    this.closePanels();
    let tl = this.timelines.get(key);
    if (!tl) {
      tl = new Timeline();
      this.timelines.set(key, tl);
    }
    this.messages.show(tl, this.me, this.title());
    this.drawPending();
    if (matchMedia('(pointer: fine)').matches) this.$('composer-text').focus();
    if (!tl.loaded) await this.loadPage(key, false);
  }

  // ---- the message view --------------------------------------------------

  // addEntry puts an event into its view's timeline, if we hold one; a view
  // never opened loads its history when it is opened.
  addEntry(key, entry) {
    const tl = this.timelines.get(key);
    if (!tl) return;
    const i = tl.insert(entry);
    if (i < 0) return;
    const shown = this.viewKey() === key;
    const pinned = shown && this.messages.atBottom();
    if (tl.entries.length > KEEP + 100 && (!shown || pinned)) {
      // Drop the oldest hundred; nobody is looking at them.
      const n = tl.trimOldest(tl.entries.length - KEEP);
      if (shown) {
        this.messages.dropOldest(n);
        this.messages.historyStatus(tl, this.title());
      }
    }
    if (!shown) return;
    const at = tl.entries.indexOf(entry);
    if (at < 0) return; // an old event, trimmed at once
    this.messages.insert(at, entry, this.me);
    this.messages.arrived(pinned, entry.data && this.isMe(entry.data.from), tl.entries[tl.entries.length - 1] === entry);
  }

  async loadPage(key, older) {
    const tl = this.timelines.get(key);
    const view = this.state.view;
    if (!tl || !view || this.viewKey() !== key || tl.loading) return;
    if (older && (!tl.loaded || !tl.hasMore)) return;
    const epoch = this.epoch;
    tl.loading = true;
    this.messages.historyStatus(tl, this.title());
    const before = older ? tl.oldestMessageId() : '';
    let msgs;
    try {
      const res = view.kind === 'room'
        ? await api.roomHistory(view.name, PAGE, before)
        : await api.userHistory(view.name, PAGE, before);
      msgs = (res && res.messages) || [];
    } catch (err) {
      tl.loading = false;
      if (epoch !== this.epoch) return;
      this.failed(err, (m) => this.messages.historyStatus(tl, this.title(), `Could not load messages: ${m}`));
      return;
    }
    tl.loading = false;
    if (epoch !== this.epoch || this.timelines.get(key) !== tl) return;
    tl.loaded = true;
    tl.hasMore = msgs.length >= PAGE;
    this.dispatch({ type: 'history', kind: view.kind, name: view.name, messages: msgs });
    const shown = this.viewKey() === key;
    const box = this.messages.box;
    const fromBottom = box.scrollHeight - box.scrollTop;
    for (const m of msgs) {
      const kind = m.to !== undefined && m.room === undefined ? 'private' : 'message';
      const i = tl.insert({ id: m.id, kind, data: m });
      if (i >= 0 && shown) this.messages.insert(i, { id: m.id, kind, data: m }, this.me);
    }
    if (!shown) return;
    this.messages.historyStatus(tl, this.title());
    // Older page: keep what the reader looks at in place. Newest page: show the end.
    box.scrollTop = older ? box.scrollHeight - fromBottom : box.scrollHeight;
    if (tl.hasMore && box.scrollHeight <= box.clientHeight + 120) this.loadPage(key, true);
  }

  onScroll() {
    if (this.state.view && this.messages.box.scrollTop < 120) this.loadPage(this.viewKey(), true);
    if (this.messages.atBottom()) this.messages.jump.hidden = true;
  }

  // ---- read markers ------------------------------------------------------

  // scheduleMark sets the open view's read marker on the server once the
  // reader has settled; every device of the user then gets a `read` event.
  scheduleMark() {
    if (!this.readMarkers || this.markTimer || !toMark(this.state)) return;
    this.markTimer = setTimeout(() => this.mark(), MARK_DELAY_MS);
  }

  async mark() {
    this.markTimer = 0;
    const m = toMark(this.state);
    if (!m || !this.readMarkers) return;
    const key = `${m.kind}:${lower(m.name)}`;
    const sent = this.marking.get(key);
    if (sent && compareIds(m.id, sent) <= 0) return; // on its way already
    this.marking.set(key, m.id);
    const epoch = this.epoch;
    try {
      const answer = m.kind === 'room' ? await api.markRoom(m.name, m.id) : await api.markConversation(m.name, m.id);
      if (epoch === this.epoch) this.dispatch({ type: 'marked', answer });
    } catch (err) {
      if (this.marking.get(key) === m.id) this.marking.delete(key);
      // A server without read markers: keep the counts on this page only.
      if (err.status === 405 || (err.status === 404 && err.message.startsWith('no route'))) this.readMarkers = false;
      else if (err.status === 401) this.sessionEnded();
    }
  }

  // ---- sending -----------------------------------------------------------

  // send moves what is typed into the outbox and empties the composer;
  // flush sends it when the stream is live.
  send() {
    const v = this.state.view;
    const area = this.$('composer-text');
    const text = area.value;
    if (!v || text.trim() === '') return;
    if ([...text].length > MAX_TEXT) {
      this.showError('composer-error', `A message can be at most ${MAX_TEXT} characters.`);
      return;
    }
    this.outbox.add(v.kind, v.name, text);
    area.value = '';
    this.showError('composer-error', '');
    this.drawPending();
    this.flush();
  }

  drawPending() {
    const v = this.state.view;
    this.messages.pending(v ? this.outbox.for(v.kind, v.name) : [], this.me);
  }

  // flush sends the outbox's messages one by one, in the order typed.
  // Offline (the stream not live) they wait: setConn calls flush when it
  // is live again. A try that fails for want of the server is repeated
  // with the same key; one the server refuses goes back to the composer.
  async flush() {
    const item = this.outbox.next();
    if (!item || this.conn !== 'live') return;
    item.sending = true;
    this.drawPending();
    const epoch = this.epoch;
    let ev;
    try {
      ev = item.kind === 'room'
        ? await api.sendRoom(item.name, item.text, item.key)
        : await api.sendUser(item.name, item.text, item.key);
    } catch (err) {
      item.sending = false;
      if (err.status === 0 || err.status === 429 || err.status >= 500) {
        this.drawPending();
        clearTimeout(this.resendTimer);
        this.resendTimer = setTimeout(() => this.flush(), RESEND_MS);
        return;
      }
      this.outbox.remove(item.key);
      this.drawPending();
      this.refused(item, err);
      this.flush();
      return;
    }
    this.outbox.remove(item.key);
    this.drawPending();
    if (epoch === this.epoch && ev && ev.id !== undefined) {
      if (ev.to !== undefined && ev.room === undefined) {
        // "@name text" in a room: the server made it a private message.
        if (item.kind === 'room') this.addEntry(`room:${item.name}`, { id: ev.id, kind: 'note', data: ev });
        this.onEvent('private', ev);
      } else {
        this.onEvent('message', ev);
      }
    }
    this.flush();
  }

  // refused shows why the server refused a message and gives its text back.
  refused(item, err) {
    this.failed(err, (m) => {
      const v = this.state.view;
      const here = v && v.kind === item.kind && lower(v.name) === lower(item.name);
      const area = this.$('composer-text');
      if (here && area.value === '') area.value = item.text;
      if (!here) m = `${item.kind === 'room' ? '#' : '@'}${item.name}: ${m}`;
      if (err.status === 404 && item.kind === 'user') m = `There is no user named @${item.name}.`;
      this.showError('composer-error', `Not sent: ${m}`);
    });
  }

  // ---- narrow screens ----------------------------------------------------

  togglePanel(which) {
    const chat = this.$('chat-view');
    const cls = which === 'sidebar' ? 'show-sidebar' : 'show-members';
    const open = !chat.classList.contains(cls);
    this.closePanels();
    if (open) {
      chat.classList.add(cls);
      this.$('scrim').hidden = false;
      this.$(which === 'sidebar' ? 'toggle-sidebar' : 'toggle-members').setAttribute('aria-expanded', 'true');
    }
  }

  closePanels() {
    const chat = this.$('chat-view');
    chat.classList.remove('show-sidebar', 'show-members');
    this.$('scrim').hidden = true;
    this.$('toggle-sidebar').setAttribute('aria-expanded', 'false');
    this.$('toggle-members').setAttribute('aria-expanded', 'false');
  }

  // ---- wiring -------------------------------------------------------------

  bindUI() {
    const on = (id, type, fn) => this.$(id).addEventListener(type, fn);
    on('login-form', 'submit', (e) => this.onLogin(e));
    on('logout', 'click', () => this.onLogout());
    on('join-form', 'submit', (e) => {
      e.preventDefault();
      this.joinRoom(this.$('join-room').value);
    });
    on('join-room', 'focus', () => this.suggestRooms());
    on('browse-rooms', 'click', () => this.openBrowser());
    on('browse-more', 'click', () => this.browseMore());
    on('browse-close', 'click', () => this.$('room-browser').close());
    on('browse-list', 'click', (e) => this.onBrowserClick(e));
    on('dm-form', 'submit', (e) => {
      e.preventDefault();
      const name = this.$('dm-user').value.trim().replace(/^@/, '');
      if (!NAME_RE.test(name)) {
        this.showError('dm-error', 'A username is 1 to 32 letters, digits, "_" or "-".');
        return;
      }
      this.showError('dm-error', '');
      this.$('dm-user').value = '';
      this.go('user', name);
    });
    on('more-members', 'click', () => {
      const v = this.state.view;
      if (v && v.kind === 'room') this.loadMembers(v.name);
    });
    on('leave-room', 'click', () => {
      const v = this.state.view;
      if (v && v.kind === 'room') this.leaveRoom(v.name);
    });
    on('composer', 'submit', (e) => {
      e.preventDefault();
      this.send();
    });
    on('composer-text', 'keydown', (e) => {
      // Enter sends, Shift+Enter is a new line; never while an IME composes.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.send();
      }
    });
    this.$('messages').addEventListener('scroll', () => this.onScroll(), { passive: true });
    on('jump-latest', 'click', () => this.messages.toBottom());
    on('toggle-sidebar', 'click', () => this.togglePanel('sidebar'));
    on('toggle-members', 'click', () => this.togglePanel('members'));
    on('scrim', 'click', () => this.closePanels());
    this.doc.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.closePanels();
    });
    window.addEventListener('hashchange', () => this.route());
    window.addEventListener('popstate', () => this.route());
    // Coming back to a tab reads its open view.
    this.doc.addEventListener('visibilitychange', () => this.dispatch({ type: 'visible', visible: !this.doc.hidden }));
    window.addEventListener('pagehide', () => this.transport.close());
    window.addEventListener('pageshow', (e) => {
      // A page restored from the back/forward cache has said goodbye to the
      // stream already: start over.
      if (e.persisted) location.reload();
    });
  }
}

new App(document).start();
