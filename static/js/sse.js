// SSEParser reads the text/event-stream format from the chunks a fetch body
// delivers, as the HTML standard's EventSource does. The stream hub uses
// fetch instead of EventSource because EventSource keeps the `retry:` field
// and the answer's status to itself, and the hub needs both: the server's
// `retry:` decides how long to wait after a `shutdown`, and a 401 means the
// session is gone.
//
// onEvent receives {type, data, id} for every dispatched event (data is the
// raw text, id the last event id seen so far); `retry` holds the last valid
// `retry:` value in milliseconds, or -1 before there is one.

export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.started = false; // a leading BOM has been dealt with
    this.afterCR = false; // the last line ended with CR: a following LF belongs to it
    this.type = '';
    this.data = [];
    this.lastId = '';
    this.retry = -1;
  }

  // feed takes the next piece of decoded text; lines may span pieces.
  feed(text) {
    let s = this.buf + text;
    if (!this.started && s.length > 0) {
      this.started = true;
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
    }
    let start = 0;
    if (this.afterCR && s.startsWith('\n', start)) start++;
    this.afterCR = false;
    for (;;) {
      let end = start;
      while (end < s.length && s[end] !== '\n' && s[end] !== '\r') end++;
      if (end === s.length) break;
      this.line(s.slice(start, end));
      if (s[end] === '\r') {
        if (end + 1 === s.length) {
          this.afterCR = true;
          start = end + 1;
          break;
        }
        if (s[end + 1] === '\n') end++;
      }
      start = end + 1;
    }
    this.buf = s.slice(start);
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line[0] === ':') return; // a comment: the server's heartbeat
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value[0] === ' ') value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
  }

  dispatch() {
    const type = this.type || 'message';
    const { data } = this;
    this.type = '';
    this.data = [];
    if (data.length === 0) return;
    this.onEvent({ type, data: data.join('\n'), id: this.lastId });
  }
}
