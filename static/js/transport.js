// connectStream gives a tab access to the browser's one shared event stream.
// It prefers a SharedWorker; without one (some mobile browsers) the tabs
// elect a leader with the Web Locks API and relay over a BroadcastChannel;
// failing both, the tab runs the stream itself.
//
// onMessage receives {type:'status',state,user}, {type:'event',kind,data}
// and {type:'signed-out'}. The returned object has send(cmd) with cmd one of
// start | restart | stop | hello, and close().
import { StreamHub } from './stream-hub.js';

export function connectStream(onMessage, prefer = '') {
  if (prefer !== 'leader' && prefer !== 'direct' && typeof SharedWorker === 'function') {
    try {
      return viaSharedWorker(onMessage);
    } catch {
      // fall through to the next way
    }
  }
  if (prefer !== 'direct' && typeof BroadcastChannel === 'function' && navigator.locks) {
    return viaLeader(onMessage);
  }
  return direct(onMessage);
}

function viaSharedWorker(onMessage) {
  const worker = new SharedWorker('/js/stream-worker.js', { type: 'module', name: 'ssechat-stream' });
  const port = worker.port;
  port.onmessage = (e) => onMessage(e.data);
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
  return { kind: 'direct', send: (cmd) => hub.command(cmd), close: () => hub.close() };
}
