// The ssechat page: login, the sidebar of rooms and private conversations,
// the members list, the message view and the composer. State lives in one
// App object; the stream comes from transport.js, shared by all tabs.
import { api } from './api.js';
import { connectStream } from './transport.js';
import { Timeline } from './timeline.js';
import { LiveState } from './live.js';
import { el, entryEl, mentionsOf } from './dom.js';

const PAGE = 50;
const MAX_TEXT = 4000; // code points, as the server counts
const NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const KEEP = 1500; // entries a timeline keeps while its reader is at the newest end

const lower = (s) => String(s || '').toLowerCase();

class App {
  constructor(doc) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.me = '';
    this.resetState();
    this.conn = 'idle';
    const prefer = new URLSearchParams(location.search).get('transport') || '';
    this.transport = connectStream((m) => this.onStream(m), prefer);
  }

  resetState() {
    this.rooms = new Map(); // room name -> {members: Map<lower name, {username}>, unread, mentioned}
    this.dms = new Map(); // lower name -> {username, unread, lastId}
    this.timelines = new Map(); // view key -> Timeline
    this.live = new LiveState(); // who is online; which stream events were handled
    this.current = null; // {kind: 'room'|'user', name, key}
    this.epoch = (this.epoch || 0) + 1; // bumps on login/logout/reset: stale answers are dropped
  }

  isMe(name) {
    return this.me !== '' && lower(name) === lower(this.me);
  }

  // ---- start, login, logout -------------------------------------------

  async start() {
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
    this.resetState();
    this.me = me.username;
    this.$('me-name').textContent = this.me;
    this.show('chat');
    this.transport.send('start');
    const epoch = this.epoch;
    this.loadRooms(me);
    await this.loadConversations();
    if (epoch !== this.epoch) return;
    this.renderSidebar();
    this.route();
  }

  show(view) {
    this.doc.body.dataset.view = view;
    this.$('boot').hidden = true;
    this.$('login-view').hidden = view !== 'login';
    this.$('chat-view').hidden = view !== 'chat';
  }

  showLogin(message) {
    this.me = '';
    this.resetState();
    this.$('message-list').replaceChildren();
    this.$('room-list').replaceChildren();
    this.$('dm-list').replaceChildren();
    this.$('member-list').replaceChildren();
    this.show('login');
    this.loginError(message);
    this.$('login-username').focus();
  }

  loginError(message) {
    const p = this.$('login-error');
    p.textContent = message || '';
    p.hidden = !message;
  }

  async onLogin(e) {
    e.preventDefault();
    const username = this.$('login-username').value.trim();
    const password = this.$('login-password').value;
    if (!NAME_RE.test(username)) {
      this.loginError('A username is 1 to 32 letters, digits, "_" or "-".');
      return;
    }
    if (password === '') {
      this.loginError('Enter your password (or choose one, if this is a new username).');
      return;
    }
    const button = this.$('login-submit');
    button.disabled = true;
    button.textContent = 'Logging in…';
    this.entering = true;
    try {
      await api.login(username, password);
      this.$('login-password').value = '';
      this.loginError('');
      this.transport.send('restart');
      await this.enter(await api.me());
    } catch (err) {
      if (err.status === 401) this.loginError('Wrong password for this username.');
      else if (err.status === 429) this.loginError('Too many attempts. Wait a minute, then try again.');
      else this.loginError(err.message);
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
        this.composerError(`Could not log out: ${err.message}`);
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
  }

  onEvent(kind, data) {
    if (!this.me || !data) return;
    if (kind === 'reset') {
      this.onReset();
      return;
    }
    if (!this.live.take(kind, data)) return; // a logged event handled already
    switch (kind) {
      case 'ready':
        this.onReady();
        break;
      case 'message':
        this.onMessage(data);
        break;
      case 'private':
        this.onPrivate(data);
        break;
      case 'join':
      case 'leave':
        this.onMembership(kind, data);
        break;
      case 'presence':
        this.onPresence(data.user);
        break;
      case 'members':
        this.onCounts(data);
        break;
      default:
        break;
    }
  }

  // onReady: the stream (re)started and live.take has marked everyone
  // offline; the presence events right behind it name who is online now.
  // A large room sends no presence, so the open room's list (with its
  // online flags) is fetched again.
  onReady() {
    this.renderMembers();
    this.renderSidebar();
    if (this.current && this.current.kind === 'room') this.refreshMembers(this.current.name);
  }

  // onPresence redraws someone's dot (live.take has set it) where it shows:
  // in the open view's members or among the conversations. The snapshot
  // after a ready names every peer online, and most show nowhere.
  onPresence(user) {
    const name = lower(user);
    const cur = this.current;
    const room = cur && cur.kind === 'room' ? this.rooms.get(cur.name) : null;
    if ((room && room.members.has(name)) || (cur && cur.kind === 'user' && lower(cur.name) === name)) this.renderMembers();
    if (this.dms.has(name)) this.renderSidebar();
  }

  // onCounts: a room too large for per-user notices sends its member and
  // online counts instead, at most once a second. The list itself is
  // refreshed now and then while the room is open.
  onCounts(ev) {
    const room = this.rooms.get(ev.room);
    if (!room) return;
    room.count = ev.members;
    room.onlineCount = ev.online;
    if (this.current && this.current.kind === 'room' && this.current.name === ev.room) {
      if (Date.now() - (room.listedAt || 0) > 30000) this.refreshMembers(ev.room);
      else this.renderMembers();
    }
  }

  onMessage(ev) {
    // Only members get a room's messages, and our own join event comes
    // first, so an unknown room is one we have just left: ignore it.
    if (!this.rooms.has(ev.room)) return;
    const key = `room:${ev.room}`;
    this.addEntry(key, { id: ev.id, kind: 'message', data: ev });
    if (!this.isMe(ev.from) && !this.isCurrent(key)) {
      const room = this.rooms.get(ev.room);
      room.unread++;
      if (mentionsOf(ev.text || '').some((n) => this.isMe(n))) room.mentioned = true;
    }
    this.renderSidebar();
  }

  onPrivate(ev) {
    const other = this.isMe(ev.from) ? ev.to : ev.from;
    const dm = this.ensureDM(other);
    dm.lastId = ev.id;
    const key = `user:${lower(other)}`;
    this.addEntry(key, { id: ev.id, kind: 'private', data: ev });
    if (!this.isMe(ev.from) && !this.isCurrent(key)) dm.unread++;
    this.renderSidebar();
  }

  onMembership(kind, ev) {
    if (this.isMe(ev.user)) {
      if (kind === 'join' && !this.rooms.has(ev.room)) {
        this.rooms.set(ev.room, newRoom());
        this.renderSidebar();
      }
      if (kind === 'leave') {
        this.dropRoom(ev.room);
        return;
      }
    }
    const room = this.rooms.get(ev.room);
    if (!room) return;
    if (!this.isMe(ev.user)) {
      // Notices about others: the room is small (again), its list is the truth.
      room.count = null;
      room.onlineCount = null;
    }
    if (kind === 'join') {
      // A join carries no online flag; someone who just joined is almost
      // surely online, and the refresh below settles it.
      this.live.guess(ev.user, true);
      room.members.set(lower(ev.user), { username: ev.user });
    } else {
      room.members.delete(lower(ev.user));
    }
    this.addEntry(`room:${ev.room}`, { id: ev.id, kind, data: ev });
    if (this.current && this.current.kind === 'room' && this.current.name === ev.room) {
      this.renderMembers();
      if (kind === 'join') this.refreshMembers(ev.room);
    }
  }

  // onReset: the server could not replay what we missed, so everything we
  // hold may have a hole. Forget it and load it again.
  async onReset() {
    // Counted on <body> for the curious (and for the end-to-end tests).
    this.doc.body.dataset.resets = String(Number(this.doc.body.dataset.resets || 0) + 1);
    const current = this.current;
    const me = this.me;
    this.resetState();
    try {
      await this.enter(await api.me());
    } catch (err) {
      if (err.status === 401) this.sessionEnded();
      return;
    }
    if (current && this.isMe(me) && !this.current) this.openView(current.kind, current.name);
  }

  // ---- rooms and conversations -----------------------------------------

  // loadRooms takes our rooms from GET /api/me (see openapi.yaml); an older
  // server without that list gets none, and rooms appear as they are joined.
  loadRooms(me) {
    const names = Array.isArray(me.rooms) ? me.rooms.map((r) => (typeof r === 'string' ? r : r.room)) : [];
    for (const name of names) {
      if (name && !this.rooms.has(name)) this.rooms.set(name, newRoom());
    }
  }

  async loadConversations() {
    try {
      const res = await api.conversations();
      for (const c of (res && res.conversations) || []) {
        const dm = this.ensureDM(c.user);
        if (c.last_id) dm.lastId = c.last_id;
      }
    } catch (err) {
      if (err.status === 401) this.sessionEnded();
      // Anything else: the list fills up from live private messages.
    }
  }

  ensureDM(name) {
    const key = lower(name);
    let dm = this.dms.get(key);
    if (!dm) {
      dm = { username: name, unread: 0, lastId: '0' };
      this.dms.set(key, dm);
    }
    return dm;
  }

  // fillMembers sets a room's member list from a REST answer requested
  // when live.seq was seq (see LiveState.listed for the online flags).
  fillMembers(room, members, seq) {
    room.members.clear();
    for (const m of members) room.members.set(lower(m.username), { username: m.username });
    this.live.listed(members, seq);
  }

  async refreshMembers(name) {
    const epoch = this.epoch;
    const seq = this.live.seq;
    try {
      const res = await api.members(name);
      const room = this.rooms.get(name);
      if (epoch !== this.epoch || !room) return;
      room.listedAt = Date.now();
      this.fillMembers(room, (res && res.members) || [], seq);
      this.renderMembers();
      this.renderSidebar();
    } catch (err) {
      if (err.status === 401) this.sessionEnded();
    }
  }

  async joinRoom(name) {
    name = name.trim().replace(/^#/, '');
    if (!ROOM_RE.test(name) || name === '.' || name === '..') {
      this.joinError('A room name is 1 to 64 letters, digits, ".", "_" or "-".');
      return;
    }
    this.joinError('');
    const seq = this.live.seq;
    try {
      const res = await api.join(name);
      const room = res.room || name;
      const entry = this.rooms.get(room) || newRoom();
      this.fillMembers(entry, res.members || [], seq);
      // A large room answers with its count and an empty list.
      if (typeof res.count === 'number' && (res.members || []).length === 0 && res.count > 0) entry.count = res.count;
      this.rooms.set(room, entry);
      this.$('join-room').value = '';
      this.renderSidebar();
      this.go('room', room);
    } catch (err) {
      this.failed(err, (m) => this.joinError(m));
    }
  }

  // suggestRooms offers the server's rooms we are not in, when the join
  // field gets focus.
  async suggestRooms() {
    let list;
    try {
      const res = await api.rooms();
      list = (res && res.rooms) || [];
    } catch {
      return; // suggestions are a nicety
    }
    const options = list
      .map((r) => (typeof r === 'string' ? { room: r } : r))
      .filter((r) => r.room && !this.rooms.has(r.room))
      .sort((a, b) => (b.members || 0) - (a.members || 0))
      .slice(0, 50)
      .map((r) => el('option', {
        attrs: { value: r.room, label: r.members ? `${r.members} member${r.members === 1 ? '' : 's'}` : null },
      }));
    this.$('room-suggestions').replaceChildren(...options);
  }

  async leaveRoom(name) {
    try {
      await api.leave(name);
    } catch (err) {
      if (this.failed(err, (m) => this.composerError(m))) return;
      if (err.status !== 403 && err.status !== 404) return;
    }
    this.dropRoom(name);
  }

  dropRoom(name) {
    this.rooms.delete(name);
    this.timelines.delete(`room:${name}`);
    this.renderSidebar();
    if (this.current && this.current.kind === 'room' && this.current.name === name) {
      this.current = null;
      this.go('', '');
    }
  }

  openDM(name) {
    name = name.trim().replace(/^@/, '');
    if (!NAME_RE.test(name)) {
      this.dmError('A username is 1 to 32 letters, digits, "_" or "-".');
      return;
    }
    this.dmError('');
    this.$('dm-user').value = '';
    this.go('user', name);
  }

  joinError(message) {
    const p = this.$('join-error');
    p.textContent = message || '';
    p.hidden = !message;
  }

  dmError(message) {
    const p = this.$('dm-error');
    p.textContent = message || '';
    p.hidden = !message;
  }

  composerError(message) {
    const p = this.$('composer-error');
    p.textContent = message || '';
    p.hidden = !message;
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
      if (m[1] === 'room' && this.rooms.has(name)) {
        this.openView('room', name);
        return;
      }
      if (m[1] === 'room' && ROOM_RE.test(name)) {
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
    const first = [...this.rooms.keys()].sort()[0];
    if (first) {
      // Replace, not push: Back should not land on a URL that redirects.
      history.replaceState(null, '', `#/room/${encodeURIComponent(first)}`);
      this.openView('room', first);
    } else {
      this.openEmpty('');
    }
  }

  openEmpty(message) {
    this.current = null;
    this.$('view-title').textContent = 'ssechat';
    this.$('message-list').replaceChildren();
    this.$('history-status').textContent = '';
    const empty = this.$('empty-state');
    if (message) empty.textContent = message;
    else empty.replaceChildren('Join a room (for example ', el('em', { text: 'lobby' }), ') to start chatting.');
    empty.hidden = false;
    this.$('composer').hidden = true;
    this.$('composer-hint').textContent = '';
    this.$('jump-latest').hidden = true;
    this.renderSidebar();
    this.renderMembers();
  }

  async openView(kind, name) {
    if (kind === 'user') name = this.ensureDM(name).username;
    const key = kind === 'room' ? `room:${name}` : `user:${lower(name)}`;
    this.current = { kind, name, key };
    this.$('view-title').textContent = kind === 'room' ? `#${name}` : `@${name}`;
    this.$('empty-state').hidden = true;
    this.$('composer').hidden = false;
    this.$('composer-text').placeholder = kind === 'room' ? `Message #${name}` : `Message @${name}`;
    this.$('composer-hint').textContent = kind === 'room'
      ? 'Enter sends · Shift+Enter adds a line · "@name text" sends privately'
      : 'Enter sends · Shift+Enter adds a line';
    this.composerError('');
    if (kind === 'room') {
      const room = this.rooms.get(name);
      room.unread = 0;
      room.mentioned = false;
    } else {
      this.dms.get(lower(name)).unread = 0;
    }
    this.closePanels();
    this.renderSidebar();
    this.renderMembers();
    let tl = this.timelines.get(key);
    if (!tl) {
      tl = new Timeline();
      this.timelines.set(key, tl);
    }
    this.renderTimeline(tl);
    if (kind === 'room') this.refreshMembers(name);
    if (matchMedia('(pointer: fine)').matches) this.$('composer-text').focus();
    if (!tl.loaded) await this.loadPage(key, false);
  }

  isCurrent(key) {
    return this.current !== null && this.current.key === key && !this.doc.hidden;
  }

  // ---- the message view --------------------------------------------------

  // addEntry puts an event into its view's timeline, if we hold one; a view
  // never opened loads its history when it is opened.
  addEntry(key, entry) {
    const tl = this.timelines.get(key);
    if (!tl) return;
    const i = tl.insert(entry);
    if (i < 0) return;
    const shown = this.current && this.current.key === key;
    const pinned = shown && this.atBottom();
    if (tl.entries.length > KEEP + 100 && (!shown || pinned)) {
      // Drop the oldest hundred; nobody is looking at them.
      const n = tl.trimOldest(tl.entries.length - KEEP);
      if (shown) {
        const list = this.$('message-list');
        for (let k = 0; k < n && list.firstChild; k++) list.firstChild.remove();
        this.historyStatus(tl);
      }
    }
    if (!shown) return;
    const at = tl.entries.indexOf(entry);
    if (at < 0) return; // an old event, trimmed at once
    const box = this.$('messages');
    this.insertNode(at, entry);
    if (pinned || (entry.data && this.isMe(entry.data.from))) {
      box.scrollTop = box.scrollHeight;
    } else if (tl.entries[tl.entries.length - 1] === entry) {
      // Reading older messages: say that newer ones came, do not yank.
      this.$('jump-latest').hidden = false;
    }
  }

  atBottom() {
    const box = this.$('messages');
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  jumpToLatest() {
    const box = this.$('messages');
    box.scrollTop = box.scrollHeight;
    this.$('jump-latest').hidden = true;
  }

  insertNode(i, entry) {
    const list = this.$('message-list');
    list.insertBefore(entryEl(entry, this.me), list.children[i] || null);
  }

  renderTimeline(tl) {
    const list = this.$('message-list');
    list.replaceChildren(...tl.entries.map((e) => entryEl(e, this.me)));
    this.historyStatus(tl);
    this.jumpToLatest();
  }

  historyStatus(tl, text) {
    const p = this.$('history-status');
    if (text !== undefined) p.textContent = text;
    else if (tl.loading) p.textContent = 'Loading…';
    else if (tl.loaded && !tl.hasMore) p.textContent = this.current ? `This is the beginning of ${this.$('view-title').textContent}.` : '';
    else p.textContent = '';
  }

  async loadPage(key, older) {
    const tl = this.timelines.get(key);
    const view = this.current;
    if (!tl || !view || view.key !== key || tl.loading) return;
    if (older && (!tl.loaded || !tl.hasMore)) return;
    const epoch = this.epoch;
    tl.loading = true;
    this.historyStatus(tl);
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
      this.failed(err, (m) => this.historyStatus(tl, `Could not load messages: ${m}`));
      return;
    }
    tl.loading = false;
    if (epoch !== this.epoch || this.timelines.get(key) !== tl) return;
    tl.loaded = true;
    tl.hasMore = msgs.length >= PAGE;
    const shown = this.current && this.current.key === key;
    const box = this.$('messages');
    const fromBottom = box.scrollHeight - box.scrollTop;
    for (const m of msgs) {
      const kind = m.to !== undefined && m.room === undefined ? 'private' : 'message';
      const i = tl.insert({ id: m.id, kind, data: m });
      if (i >= 0 && shown) this.insertNode(i, { id: m.id, kind, data: m });
    }
    if (!shown) return;
    this.historyStatus(tl);
    // Older page: keep what the reader looks at in place. Newest page: show the end.
    box.scrollTop = older ? box.scrollHeight - fromBottom : box.scrollHeight;
    if (tl.hasMore && box.scrollHeight <= box.clientHeight + 120) this.loadPage(key, true);
  }

  onScroll() {
    const box = this.$('messages');
    if (this.current && box.scrollTop < 120) this.loadPage(this.current.key, true);
    if (this.atBottom()) this.$('jump-latest').hidden = true;
  }

  async send() {
    const view = this.current;
    const area = this.$('composer-text');
    const text = area.value;
    if (!view || text.trim() === '' || this.sending) return;
    if ([...text].length > MAX_TEXT) {
      this.composerError(`A message can be at most ${MAX_TEXT} characters.`);
      return;
    }
    this.sending = true;
    this.$('send').disabled = true;
    try {
      const ev = view.kind === 'room'
        ? await api.sendRoom(view.name, text)
        : await api.sendUser(view.name, text);
      if (area.value === text) area.value = ''; // keep anything typed meanwhile
      this.composerError('');
      if (ev && ev.to !== undefined && ev.room === undefined) {
        // "@name text" in a room: the server made it a private message.
        if (view.kind === 'room') this.addEntry(view.key, { id: ev.id, kind: 'note', data: ev });
        this.onEvent('private', ev);
      } else if (ev && ev.id !== undefined) {
        this.onEvent('message', ev);
      }
    } catch (err) {
      this.failed(err, (m) => {
        if (err.status === 404 && view.kind === 'user') this.composerError(`There is no user named @${view.name}.`);
        else if (err.status === 404) this.composerError(`Not sent: ${m}`);
        else if (err.status === 0) this.composerError('Not sent: the server cannot be reached. Your text is kept; try again.');
        else this.composerError(`Not sent: ${m}`);
      });
    } finally {
      this.sending = false;
      this.$('send').disabled = false;
    }
  }

  // ---- sidebar and members ---------------------------------------------

  renderSidebar() {
    const cur = this.current;
    const rooms = [...this.rooms.keys()].sort((a, b) => a.localeCompare(b));
    this.$('room-list').replaceChildren(...rooms.map((name) => {
      const r = this.rooms.get(name);
      const selected = cur && cur.kind === 'room' && cur.name === name;
      return el('li', {},
        el('a', {
          class: 'nav-item',
          attrs: { href: `#/room/${encodeURIComponent(name)}`, 'aria-current': selected ? 'page' : null, 'data-room': name },
        },
        el('span', { class: 'hash', text: '#', attrs: { 'aria-hidden': 'true' } }),
        el('span', { class: 'name', text: name }),
        badge(r.unread, r.mentioned)));
    }));
    if (rooms.length === 0) this.$('room-list').replaceChildren(el('li', { class: 'nav-empty', text: 'No rooms yet.' }));
    const dms = [...this.dms.values()].sort((a, b) => (BigInt(b.lastId || 0) > BigInt(a.lastId || 0) ? 1 : -1));
    this.$('dm-list').replaceChildren(...dms.map((d) => {
      const selected = cur && cur.kind === 'user' && lower(cur.name) === lower(d.username);
      const online = this.live.isOnline(d.username);
      return el('li', {},
        el('a', {
          class: 'nav-item',
          attrs: { href: `#/user/${encodeURIComponent(d.username)}`, 'aria-current': selected ? 'page' : null, 'data-user': d.username },
        },
        el('span', { class: online ? 'dot online' : 'dot', attrs: { 'aria-label': online ? 'online' : 'offline' } }),
        el('span', { class: 'name', text: d.username }),
        badge(d.unread, d.unread > 0)));
    }));
    if (dms.length === 0) this.$('dm-list').replaceChildren(el('li', { class: 'nav-empty', text: 'Click a member, or type a name above.' }));
    const unread = [...this.rooms.values()].reduce((n, r) => n + r.unread, 0)
      + [...this.dms.values()].reduce((n, d) => n + d.unread, 0);
    this.doc.title = unread > 0 ? `(${unread}) ssechat` : 'ssechat';
  }

  renderMembers() {
    const list = this.$('member-list');
    const cur = this.current;
    const leave = this.$('leave-room');
    if (!cur) {
      list.replaceChildren();
      leave.hidden = true;
      this.$('members-title').textContent = 'Members';
      return;
    }
    let members;
    if (cur.kind === 'room') {
      const room = this.rooms.get(cur.name);
      members = room ? [...room.members.values()].map(({ username }) => ({ username, online: this.live.isOnline(username) })) : [];
      // A large room's counts come from `members` events; its list (and its
      // dots, without presence notices) only as fresh as the last refresh.
      const count = room && typeof room.count === 'number' ? room.count : members.length;
      const online = room && typeof room.onlineCount === 'number' ? `, ${room.onlineCount} online` : '';
      this.$('members-title').textContent = `Members (${count}${online})`;
    } else {
      const other = cur.name;
      members = [
        { username: this.me, online: true },
        { username: other, online: this.live.isOnline(other) },
      ];
      if (this.isMe(other)) members.pop();
      this.$('members-title').textContent = 'In this conversation';
    }
    leave.hidden = cur.kind !== 'room';
    members.sort((a, b) => (b.online - a.online) || a.username.localeCompare(b.username));
    list.replaceChildren(...members.map((m) => {
      const label = this.isMe(m.username) ? `${m.username} (you)` : m.username;
      const inner = this.isMe(m.username)
        ? el('span', { class: 'name', text: label })
        : el('a', { class: 'name', text: label, attrs: { href: `#/user/${encodeURIComponent(m.username)}`, title: `Message @${m.username}` } });
      return el('li', { class: m.online ? 'member online' : 'member', attrs: { 'data-user': m.username } },
        el('span', { class: m.online ? 'dot online' : 'dot', attrs: { 'aria-label': m.online ? 'online' : 'offline' } }),
        inner);
    }));
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
    this.$('login-form').addEventListener('submit', (e) => this.onLogin(e));
    this.$('logout').addEventListener('click', () => this.onLogout());
    this.$('join-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.joinRoom(this.$('join-room').value);
    });
    this.$('join-room').addEventListener('focus', () => this.suggestRooms());
    this.$('dm-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.openDM(this.$('dm-user').value);
    });
    this.$('leave-room').addEventListener('click', () => {
      if (this.current && this.current.kind === 'room') this.leaveRoom(this.current.name);
    });
    this.$('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.$('composer-text').addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter is a new line; never while an IME composes.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.send();
      }
    });
    this.$('messages').addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.$('jump-latest').addEventListener('click', () => this.jumpToLatest());
    this.$('toggle-sidebar').addEventListener('click', () => this.togglePanel('sidebar'));
    this.$('toggle-members').addEventListener('click', () => this.togglePanel('members'));
    this.$('scrim').addEventListener('click', () => this.closePanels());
    this.doc.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.closePanels();
    });
    window.addEventListener('hashchange', () => this.route());
    window.addEventListener('popstate', () => this.route());
    this.doc.addEventListener('visibilitychange', () => {
      // Coming back to a tab counts its current view as read.
      if (!this.doc.hidden && this.current) {
        const { kind, name } = this.current;
        const item = kind === 'room' ? this.rooms.get(name) : this.dms.get(lower(name));
        if (item && item.unread) {
          item.unread = 0;
          item.mentioned = false;
          this.renderSidebar();
        }
      }
    });
    window.addEventListener('pagehide', () => this.transport.close());
    window.addEventListener('pageshow', (e) => {
      // A page restored from the back/forward cache has said goodbye to the
      // stream already: start over.
      if (e.persisted) location.reload();
    });
  }
}

function newRoom() {
  return { members: new Map(), unread: 0, mentioned: false, count: null, onlineCount: null, listedAt: 0 };
}

function badge(n, strong) {
  if (!n) return null;
  return el('span', {
    class: strong ? 'badge strong' : 'badge',
    text: n > 99 ? '99+' : String(n),
    attrs: { 'aria-label': `${n} unread` },
  });
}

new App(document).start();
