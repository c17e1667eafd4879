// The composer: the text area under the open view, its hint and its error
// line. Enter sends what is typed (to onSend), Shift+Enter adds a line; a
// message the server refused comes back here with the reason. The checks
// and wordings are pure functions, unit tested with node
// (static/_test/controllers.test.mjs).
import { MAX_TEXT, lower } from './names.js';

// checkText is why text cannot be sent, or '' when it can.
export function checkText(text) {
  if ([...text].length > MAX_TEXT) return `A message can be at most ${MAX_TEXT} characters.`;
  return '';
}

// hints are the composer's placeholder and hint line for a view.
export function hints(kind, name) {
  return kind === 'room'
    ? { placeholder: `Message #${name}`, hint: 'Enter sends · Shift+Enter adds a line · "@name text" sends privately' }
    : { placeholder: `Message @${name}`, hint: 'Enter sends · Shift+Enter adds a line' };
}

// refusal says why the server refused item, naming where it was going when
// that is not the open view (here false).
export function refusal(item, err, here) {
  let m = err.message;
  if (!here) m = `${item.kind === 'room' ? '#' : '@'}${item.name}: ${m}`;
  if (err.status === 404 && item.kind === 'user') m = `There is no user named @${item.name}.`;
  return `Not sent: ${m}`;
}

// sameView: item was written in the view v.
export function sameView(v, item) {
  return !!v && v.kind === item.kind && lower(v.name) === lower(item.name);
}

export class Composer {
  // onSend(text) takes what is typed and says whether it did (false: no
  // view is open); the composer then empties itself.
  constructor(doc, onSend) {
    this.form = doc.getElementById('composer');
    this.area = doc.getElementById('composer-text');
    this.hint = doc.getElementById('composer-hint');
    this.errorLine = doc.getElementById('composer-error');
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit(onSend);
    });
    this.area.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter is a new line; never while an IME composes.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submit(onSend);
      }
    });
  }

  submit(onSend) {
    const text = this.area.value;
    if (text.trim() === '') return;
    const why = checkText(text);
    if (why) {
      this.error(why);
      return;
    }
    if (!onSend(text)) return;
    this.area.value = '';
    this.error('');
  }

  // open shows the composer for a view; close hides it (no view open).
  open(kind, name, focus) {
    const h = hints(kind, name);
    this.form.hidden = false;
    this.area.placeholder = h.placeholder;
    this.hint.textContent = h.hint;
    this.error('');
    if (focus) this.area.focus();
  }

  close() {
    this.form.hidden = true;
    this.hint.textContent = '';
  }

  error(message) {
    this.errorLine.textContent = message || '';
    this.errorLine.hidden = !message;
  }

  // refused gives a refused message's text back, if it was written here
  // and nothing new is being typed, and says why.
  refused(item, err, here) {
    if (here && this.area.value === '') this.area.value = item.text;
    this.error(refusal(item, err, here));
  }
}
