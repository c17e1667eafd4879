// connectStream gives a tab access to the browser's one shared event stream.
// It prefers a SharedWorker; without one (some mobile browsers) the tabs
// elect a leader with the Web Locks API and relay over a BroadcastChannel;
// failing both, the tab runs the stream itself.
//
// onMessage receives {type:'transport',kind}, {type:'status',state,user},
// {type:'event',kind,data} and {type:'signed-out'}. The returned object has
// send(cmd) with cmd one of start | restart | stop | hello, and close().
import { StreamHub } from './stream-hub.js';

const WORKER_GREETING_MS = 5000;

export function connectStream(onMessage, prefer = '') {
  const t = {
    inner: null,
    started: false, // a tab asked for the stream: a fallback must ask again
    send(cmd) {
      if (cmd === 'start' || cmd === 'restart') t.started = true;
      if (cmd === 'stop') t.started = false;
      t.inner.send(cmd);
    },
    close() {
      t.inner.close();
    },
  };
  const use = (inner) => {
    t.inner = inner;
    onMessage({ type: 'transport', kind: inner.kind });
  };
  // A browser with SharedWorker but without module workers (or a worker
  // script that fails to load) reports an error on the worker: fall back.
  const fallback = () => {
    use(withoutWorker(onMessage, prefer));
    if (t.started) t.inner.send('start');
  };
  if (prefer !== 'leader' && prefer !== 'direct' && typeof SharedWorker === 'function') {
    try {
      use(viaSharedWorker(onMessage, fallback));
      return t;
    } catch {
      // fall through to the next way
    }
  }
  use(withoutWorker(onMessage, prefer));
  return t;
}

function withoutWorker(onMessage, prefer) {
  if (prefer !== 'direct' && typeof BroadcastChannel === 'function' && navigator.locks) {
    return viaLeader(onMessage);
  }
  return direct(onMessage);
}

function viaSharedWorker(onMessage, onFail) {
  const worker = new SharedWorker('/js/stream-worker.js', { type: 'module', name: 'ssechat-stream' });
  const port = worker.port;
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    port.close();
    onFail();
  };
  worker.addEventListener('error', fail);
  // The worker greets every new port at once. A tab that connects while a
  // broken worker is still starting gets no error event, only silence.
  const silence = setTimeout(fail, WORKER_GREETING_MS);
  port.onmessage = (e) => {
    clearTimeout(silence);
    if (!failed) onMessage(e.data);
  };
  port.start();
  return {
    kind: 'shared-worker',
    send: (cmd) => port.postMessage({ cmd }),
    close: () => port.postMessage({ cmd: 'bye' }),
  };
}

function viaLeader(onMessage) {
  const channel = new BroadcastChannel('ssechat-stream');
  let hub = null;
  let lastId = ''; // how far this tab has read, to resume from if it leads
  let user = '';
  const seen = (msg) => {
    if (msg.lastId) lastId = msg.lastId;
    if (msg.type === 'status') user = msg.user;
    if (msg.type === 'signed-out') user = '';
    onMessage(msg);
  };
  channel.onmessage = (e) => {
    const msg = e.data;
    if (msg.type === 'cmd') {
      if (hub) hub.command(msg.cmd);
    } else {
      seen(msg);
    }
  };
  // The lock is held until the tab closes; the next tab in line then takes
  // over, resuming from the last event it saw, so no tab misses anything.
  navigator.locks.request('ssechat-stream-leader', () => new Promise(() => {
    hub = new StreamHub((msg) => {
      seen(msg);
      channel.postMessage(msg);
    }, lastId);
    window.addEventListener('online', () => hub.kick());
    // A new leader of logged-in tabs reconnects at once; otherwise it waits
    // for a tab to log in.
    if (user || lastId) hub.command('start');
  }));
  const send = (cmd) => {
    if (hub) hub.command(cmd);
    else channel.postMessage({ type: 'cmd', cmd });
  };
  return { kind: 'leader', send, close: () => channel.close() };
}

function direct(onMessage) {
  const hub = new StreamHub(onMessage);
  window.addEventListener('online', () => hub.kick());
  return { kind: 'direct', send: (cmd) => hub.command(cmd), close: () => hub.close() };
}
