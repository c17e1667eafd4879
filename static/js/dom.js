// DOM helpers. Every user-supplied string reaches the page through
// textContent or a Text node, never through innerHTML, so a message such as
// <img src=x onerror=alert(1)> is shown as the characters it is.
import { mentions, mentionsOf } from './names.js';

export { mentionsOf };

// el builds an element: el('li', {class: 'x', text: 'hi', attrs: {...}}, ...children)
export function el(tag, opts = {}, ...children) {
  const node = document.createElement(tag);
  if (opts.class) node.className = opts.class;
  if (opts.text !== undefined) node.textContent = opts.text;
  if (opts.attrs) {
    for (const [k, v] of Object.entries(opts.attrs)) {
      if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  if (opts.on) {
    for (const [k, fn] of Object.entries(opts.on)) node.addEventListener(k, fn);
  }
  for (const c of children) {
    if (c !== null && c !== undefined && c !== false) node.append(c);
  }
  return node;
}

// Explicit bidi embeddings, overrides and isolates. In a message each one
// is put in an isolate of its own, so that it reorders nothing:
// "abc\u202Egnp.exe" reads "abcgnp.exe", as typed, not "abcexe.png".
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/g;

// plainText appends text to parent as Text nodes, line breaks normalised
// (a lone "\r" is a break, as "\n" and "\r\n" are: CSS would show it as a
// space) and bidi controls defused.
function plainText(parent, text) {
  text = text.replace(/\r\n?/g, '\n');
  let last = 0;
  for (const m of text.matchAll(BIDI_CONTROL)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    const code = m[0].codePointAt(0).toString(16).toUpperCase();
    parent.append(el('bdi', { class: 'bidi-control', text: m[0], attrs: { title: `U+${code}` } }));
    last = m.index + 1;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

// richText renders text into parent, with @name mentions as highlighted
// spans (and the reader's own name highlighted more).
export function richText(parent, text, me) {
  let last = 0;
  for (const m of mentions(text)) {
    if (m.start > last) plainText(parent, text.slice(last, m.start));
    const self = me && m.name.toLowerCase() === me.toLowerCase();
    parent.append(el('span', { class: self ? 'mention me' : 'mention', text: `@${m.name}` }));
    last = m.end;
  }
  if (last < text.length) plainText(parent, text.slice(last));
  return parent;
}

// messageText is the element of a message's text: an isolate of its own
// (dir=auto), so that neither its direction nor a stray control in it
// spills into the name, the time or the next message.
export function messageText(tag, cls, text, me) {
  return richText(el(tag, { class: cls, attrs: { dir: 'auto' } }), text, me);
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

export function timeEl(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return el('time', { class: 'ts' });
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return el('time', {
    class: 'ts',
    text: (sameDay ? timeFmt : dateTimeFmt).format(d),
    attrs: { datetime: d.toISOString(), title: d.toLocaleString() },
  });
}

// entryEl renders one timeline entry as a list item.
export function entryEl(entry, me) {
  const { kind, data } = entry;
  if (kind === 'join' || kind === 'leave') {
    return el('li', { class: 'event system', attrs: { 'data-id': entry.id } },
      el('span', { class: 'system-text', text: `${data.user} ${kind === 'join' ? 'joined' : 'left'} #${data.room}` }),
      timeEl(data.ts));
  }
  if (kind === 'note') {
    return el('li', { class: 'event system note', attrs: { 'data-id': entry.id } },
      el('span', { class: 'system-text', text: `Sent privately to @${data.to}: ` }),
      messageText('span', 'note-text', data.text || '', ''),
      timeEl(data.ts));
  }
  const mine = me && data.from && data.from.toLowerCase() === me.toLowerCase();
  const mentionsMe = !mine && mentionsOf(data.text || '').some((n) => n.toLowerCase() === me.toLowerCase());
  let cls = 'event msg';
  if (mine) cls += ' mine';
  if (mentionsMe) cls += ' mentions-me';
  if (kind === 'private') cls += ' private';
  return el('li', { class: cls, attrs: { 'data-id': entry.id } },
    el('div', { class: 'meta' },
      el('span', { class: 'from', text: data.from || '' }),
      timeEl(data.ts)),
    messageText('div', 'text', data.text || '', me));
}
