// DOM helpers. Every user-supplied string reaches the page through
// textContent or a Text node, never through innerHTML, so a message such as
// <img src=x onerror=alert(1)> is shown as the characters it is.

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

const MENTION = /(^|[^A-Za-z0-9_-])@([A-Za-z0-9_-]{1,32})(?![A-Za-z0-9_-])/g;

// mentionsOf lists the names mentioned with @name in text.
export function mentionsOf(text) {
  const names = [];
  for (const m of text.matchAll(MENTION)) names.push(m[2]);
  return names;
}

// richText renders text into parent, with @name mentions as highlighted
// spans (and the reader's own name highlighted more).
export function richText(parent, text, me) {
  let last = 0;
  for (const m of text.matchAll(MENTION)) {
    const start = m.index + m[1].length;
    if (start > last) parent.append(document.createTextNode(text.slice(last, start)));
    const name = m[2];
    const self = me && name.toLowerCase() === me.toLowerCase();
    parent.append(el('span', { class: self ? 'mention me' : 'mention', text: `@${name}` }));
    last = start + 1 + name.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  return parent;
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
      el('span', { class: 'note-text', text: data.text }),
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
    richText(el('div', { class: 'text' }), data.text || '', me));
}
