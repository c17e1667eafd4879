// The SharedWorker that lets every tab of a browser share one event stream.
// Browsers allow six HTTP/1.1 connections per host; with one stream per tab
// the seventh tab would hang. Tabs talk to this worker over MessagePorts.
import { StreamHub } from './stream-hub.js';

const ports = new Set();

const hub = new StreamHub((msg) => {
  for (const port of ports) port.postMessage(msg);
});

self.addEventListener('online', () => hub.kick());

self.addEventListener('connect', (e) => {
  const port = e.ports[0];
  ports.add(port);
  port.onmessage = (m) => {
    const cmd = m.data && m.data.cmd;
    if (cmd === 'bye') {
      ports.delete(port);
      // Nobody left to deliver to: close the stream so that the server sees
      // this user go offline now, not when the worker is reaped.
      if (ports.size === 0) hub.close();
      return;
    }
    hub.command(cmd);
  };
  port.start();
  port.postMessage(hub.status());
});
