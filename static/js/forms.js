// The page's small forms: logging in, joining a room, opening a private
// conversation. Each checks what was typed before the server sees it and
// shows its own error line; what to do with it is the page's (app.js).
// The checks and wordings are pure, unit tested with node
// (static/_test/controllers.test.mjs).
import { NAME_RE, validRoom } from './names.js';

const BAD_NAME = 'A username is 1 to 32 letters, digits, "_" or "-".';

// checkLogin is why a login cannot be sent, or ''.
export function checkLogin(username, password) {
  if (!NAME_RE.test(username)) return BAD_NAME;
  if (password === '') return 'Enter your password (or choose one, if this is a new username).';
  return '';
}

// loginFailure says why the server refused a login.
export function loginFailure(err) {
  if (err.status === 401) return 'Wrong password for this username.';
  if (err.status === 429) return 'Too many attempts. Wait a minute, then try again.';
  return err.message;
}

// roomInput reads a room name as typed ("#lobby" or "lobby"): {name, error}.
export function roomInput(text) {
  const name = text.trim().replace(/^#/, '');
  return validRoom(name) ? { name, error: '' } : { name, error: 'A room name is 1 to 64 letters, digits, ".", "_" or "-".' };
}

// userInput reads a user name as typed ("@bob" or "bob"): {name, error}.
export function userInput(text) {
  const name = text.trim().replace(/^@/, '');
  return NAME_RE.test(name) ? { name, error: '' } : { name, error: BAD_NAME };
}

export function showError(doc, id, message) {
  const p = doc.getElementById(id);
  p.textContent = message || '';
  p.hidden = !message;
}

// bindLogin wires the login form to login(username, password), a promise
// that settles once the page is in (or rejects with an ApiError).
export function bindLogin(doc, login) {
  const $ = (id) => doc.getElementById(id);
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    const why = checkLogin(username, password);
    showError(doc, 'login-error', why);
    if (why) return;
    const button = $('login-submit');
    button.disabled = true;
    button.textContent = 'Logging in…';
    try {
      await login(username, password);
      $('login-password').value = '';
    } catch (err) {
      showError(doc, 'login-error', loginFailure(err));
    } finally {
      button.disabled = false;
      button.textContent = 'Log in';
    }
  });
}

// bindNavForms wires the sidebar's join and private-message forms:
// join(name) is a promise of whether it joined (it shows its own errors);
// openUser(name) opens a conversation.
export function bindNavForms(doc, join, openUser) {
  const $ = (id) => doc.getElementById(id);
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    join($('join-room').value);
  });
  $('dm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const { name, error } = userInput($('dm-user').value);
    showError(doc, 'dm-error', error);
    if (error) return;
    $('dm-user').value = '';
    openUser(name);
  });
}
