// The ssechat page. Where to look:
//   state.js          how each stream event and REST answer changes the rooms,
//                     conversations, member counts, read markers and unread counts
//   views/*.js        how that is drawn: sidebar, members, messages, room browser, drawers
//   transport.js, stream-hub.js, sse.js   the one event stream all tabs share
//   history.js        the open views' messages: the stream's and history pages
//   room-info.js      counts, read markers and member pages asked of the server
//   composer.js, sending.js, outbox.js    what is typed, on its way to the server
//   read-marks.js     setting read markers; directory.js finding rooms;
//   membership.js     joining and leaving them
//   forms.js          login, join and private-message forms
//   api.js            the HTTP calls; route.js the page's address
// This file is the controller: it starts the session, hands each stream
// event to the reducer and to the open views' timelines, and after every
// change of state has it drawn and acted upon.
import { api } from './api.js';
import { connectStream } from './transport.js';
import { LiveState } from './live.js';
import { el } from './dom.js';
import { lower } from './names.js';
import { initialState, reduce, viewKey, viewTitle } from './state.js';
import { Sender, wentPrivate } from './sending.js';
import { ReadMarks } from './read-marks.js';
import { History, timelineKey } from './history.js';
import { RoomInfo } from './room-info.js';
import { Composer, sameView } from './composer.js';
import { Directory } from './directory.js';
import { bindLogin, bindNavForms, showError } from './forms.js';
import { Membership } from './membership.js';
import { Router } from './route.js';
import { renderSidebar } from './views/sidebar.js';
import { renderMembers } from './views/members.js';
import { MessageView } from './views/messages.js';
import { bindPanels, closePanels } from './views/panels.js';

class App {
  constructor(doc) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.messages = new MessageView(doc);
    this.conn = 'idle';
    this.epoch = 0; // bumped by fresh: stale answers are dropped
    // What the parts below need of the page.
    const app = this;
    const page = {
      get live() { return app.live; },
      me: () => this.me,
      isMe: (name) => this.isMe(name),
      state: () => this.state,
      rooms: () => this.state.rooms,
      dispatch: (a) => this.dispatch(a),
      epoch: () => this.epoch,
      viewKey: () => viewKey(this.state),
      title: () => viewTitle(this.state),
      failed: (err, show) => this.failed(err, show),
      sessionEnded: () => this.sessionEnded(),
      redraw: () => this.scheduleRender(),
      go: (kind, name) => this.router.go(kind, name),
      open: (kind, name) => this.openView(kind, name),
      openEmpty: (message) => this.openEmpty(message),
      offerJoin: (room) => {
        this.openEmpty(`You are not in #${room}. Press Join to enter it.`);
        this.$('join-room').value = room;
        this.$('join-room').focus();
      },
      join: (text) => this.membership.join(text),
      forgetRoom: (room) => this.forgetRoom(room),
      composerError: (message) => this.composer.error(message),
    };
    this.history = new History(this.messages, api, page);
    this.info = new RoomInfo(api, page);
    this.membership = new Membership(doc, api, page);
    this.directory = new Directory(doc, api, page);
    this.router = new Router(page);
    this.marks = new ReadMarks({
      api,
      state: () => this.state,
      onMarked: (answer) => this.dispatch({ type: 'marked', answer }),
      onSessionEnded: () => this.sessionEnded(),
    });
    this.sender = new Sender({
      api,
      isLive: () => this.conn === 'live',
      onChange: () => this.drawPending(),
      onSent: (item, ev) => this.sent(item, ev),
      onRefused: (item, err) => this.failed(err, () => this.composer.refused(item, err, sameView(this.state.view, item))),
    });
    this.composer = new Composer(doc, (text) => {
      const v = this.state.view;
      if (v) this.sender.add(v.kind, v.name, text);
      return !!v;
    });
    this.fresh(initialState());
    const prefer = new URLSearchParams(location.search).get('transport') || '';
    this.transport = connectStream((m) => this.onStream(m), prefer);
  }

  // fresh starts over with state s (login, logout, reset).
  fresh(s) {
    this.state = { ...s, visible: this.visible(), focused: this.doc.hasFocus() };
    this.live = new LiveState(); // who is online; which logged events were handled
    this.history.reset();
    this.info.reset();
    this.marks.reset();
    this.epoch++;
  }

  visible() {
    return this.doc.visibilityState === 'visible';
  }

  get me() {
    return this.state.me;
  }

  isMe(name) {
    return this.me !== '' && lower(name) === lower(this.me);
  }

  // dispatch applies an action to the state (see state.js), then does what
  // the new state asks for: a redraw, a read marker, counts, a member page.
  dispatch(action) {
    this.state = reduce(this.state, action);
    this.scheduleRender();
    this.marks.schedule();
    this.info.update();
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      if (!this.me) return;
      renderSidebar(this.doc, this.state, this.live);
      const v = this.state.view;
      renderMembers(this.doc, this.state, this.live, v && v.kind === 'room' && this.info.loading.has(v.name));
    });
  }

  // ---- the session -------------------------------------------------------

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
    if (!this.isMe(me.username)) this.sender.clear();
    this.fresh(reduce(this.state, { type: 'session', me: me.username }));
    this.$('me-name').textContent = this.me;
    this.show('chat');
    this.transport.send('start');
    const epoch = this.epoch;
    this.dispatch({ type: 'me', rooms: me.rooms || [] });
    await Promise.all([this.info.rooms([...this.state.rooms.keys()]), this.info.conversations()]);
    if (epoch === this.epoch) this.router.route();
  }

  show(view) {
    this.doc.body.dataset.view = view;
    this.$('boot').hidden = true;
    this.$('login-view').hidden = view !== 'login';
    this.$('chat-view').hidden = view !== 'chat';
  }

  showLogin(message) {
    this.fresh(initialState());
    this.sender.clear();
    this.messages.clear();
    renderSidebar(this.doc, this.state, this.live);
    renderMembers(this.doc, this.state, this.live, false);
    this.show('login');
    showError(this.doc, 'login-error', message);
    this.$('login-username').focus();
  }

  async login(username, password) {
    this.entering = true;
    try {
      await api.login(username, password);
      this.transport.send('restart');
      await this.enter(await api.me());
    } finally {
      this.entering = false;
    }
  }

  async onLogout() {
    try {
      await api.logout();
    } catch (err) {
      if (err.status !== 401) {
        this.composer.error(`Could not log out: ${err.message}`);
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

  // ---- the stream --------------------------------------------------------

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
    const status = this.$('conn-status');
    status.textContent = { connecting: 'Connecting…', reconnecting: 'Reconnecting…' }[state] || '';
    status.className = `conn ${state}`;
    if (state === 'live') this.sender.flush();
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
    if (kind === 'leave' && this.isMe(data.user)) this.forgetRoom(data.room);
    else this.history.add(timelineKey(this.state, kind, data), { id: data.id, kind, data });
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

  // sent takes the server's answer to a message from the outbox as the
  // stream would bring it (the stream's copy is then a repeat).
  sent(item, ev) {
    if (!wentPrivate(ev)) {
      this.onEvent('message', ev);
      return;
    }
    // "@name text" in a room: the server made it a private message.
    if (item.kind === 'room') this.history.add(`room:${item.name}`, { id: ev.id, kind: 'note', data: ev });
    this.onEvent('private', ev);
  }

  drawPending() {
    const v = this.state.view;
    this.messages.pending(v ? this.sender.pending(v.kind, v.name) : [], this.me);
  }

  forgetRoom(name) {
    this.history.forget(`room:${name}`);
    if (!this.state.view) this.router.go('', '');
  }

  // ---- the open view -----------------------------------------------------

  openEmpty(message) {
    this.dispatch({ type: 'view', view: null });
    this.$('view-title').textContent = viewTitle(this.state);
    this.messages.clear();
    const empty = this.$('empty-state');
    if (message) empty.textContent = message;
    else empty.replaceChildren('Join a room (for example ', el('em', { text: 'lobby' }), ') to start chatting.');
    empty.hidden = false;
    this.composer.close();
  }

  async openView(kind, name) {
    if (kind === 'user') {
      const known = this.state.convs.get(lower(name));
      if (known) name = known.username;
    }
    this.dispatch({ type: 'view', view: { kind, name } });
    this.$('view-title').textContent = viewTitle(this.state);
    this.$('empty-state').hidden = true;
    this.composer.open(kind, name, matchMedia('(pointer: fine)').matches);
    closePanels(this.doc);
    const shown = this.history.show(viewKey(this.state));
    this.drawPending();
    await shown;
  }

  // ---- wiring ------------------------------------------------------------

  start() {
    const on = (id, type, fn) => this.$(id).addEventListener(type, fn);
    bindLogin(this.doc, (username, password) => this.login(username, password));
    on('logout', 'click', () => this.onLogout());
    bindNavForms(this.doc, (text) => this.membership.join(text), (name) => this.router.go('user', name));
    const inRoom = (fn) => () => {
      const v = this.state.view;
      if (v && v.kind === 'room') fn(v.name);
    };
    on('more-members', 'click', inRoom((name) => this.info.members(name)));
    on('leave-room', 'click', inRoom((name) => this.membership.leave(name)));
    this.$('messages').addEventListener('scroll', () => this.history.onScroll(), { passive: true });
    on('jump-latest', 'click', () => this.messages.toBottom());
    bindPanels(this.doc);
    // Coming back to a tab reads its open view; its read marker is set only
    // while the page is visible and has the focus.
    this.doc.addEventListener('visibilitychange', () => {
      this.state = reduce(this.state, { type: 'focus', focused: this.doc.hasFocus() });
      this.dispatch({ type: 'visible', visible: this.visible() });
    });
    window.addEventListener('focus', () => this.dispatch({ type: 'focus', focused: true }));
    window.addEventListener('blur', () => this.dispatch({ type: 'focus', focused: this.doc.hasFocus() }));
    window.addEventListener('pagehide', () => this.transport.close());
    window.addEventListener('pageshow', (e) => {
      // A page restored from the back/forward cache has said goodbye to the
      // stream already: start over.
      if (e.persisted) location.reload();
    });
    this.boot(1000);
  }
}

new App(document).start();
