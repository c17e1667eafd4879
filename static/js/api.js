// Thin wrappers around the HTTP API (openapi.yaml). The session is an
// HttpOnly cookie that the page never sees; every write sends
// Content-Type: application/json, which the server requires of
// cookie-authenticated writes (CSRF defence).

export class ApiError extends Error {
  // retryAfter: the answer's Retry-After in seconds (0 when it had none).
  constructor(status, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// retryAfterSeconds reads a Retry-After header: whole seconds, or an HTTP
// date; 0 when there is none or it cannot be read.
export function retryAfterSeconds(value, now = Date.now()) {
  if (!value) return 0;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? 0 : Math.max(0, Math.ceil((at - now) / 1000));
}

async function request(method, path, body, headers = {}) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { ...headers } };
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'Cannot reach the server. Check your connection and try again.');
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string' && data.error) || `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, msg, retryAfterSeconds(res.headers.get('Retry-After')));
  }
  return data;
}

const seg = encodeURIComponent;

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  return q.toString();
}

export const api = {
  login: (username, password) => request('POST', '/api/login', { username, password }),
  logout: () => request('POST', '/api/logout'),
  me: () => request('GET', '/api/me'),
  // A page of every room, sorted by name, starting after `after`.
  rooms: (limit, after) => request('GET', `/api/rooms?${query({ limit, after })}`),
  conversations: () => request('GET', '/api/conversations'),
  join: (room) => request('POST', `/api/rooms/${seg(room)}/join`),
  leave: (room) => request('POST', `/api/rooms/${seg(room)}/leave`),
  // A page of a room's members, sorted by name, starting after `after`.
  members: (room, limit, after) => request('GET', `/api/rooms/${seg(room)}/members?${query({ limit, after })}`),
  roomHistory: (room, limit, before) => request('GET', `/api/rooms/${seg(room)}/messages?${query({ limit, before })}`),
  userHistory: (user, limit, before) => request('GET', `/api/users/${seg(user)}/messages?${query({ limit, before })}`),
  // key is the message's Idempotency-Key, the same on every try.
  sendRoom: (room, text, key) => request('POST', `/api/rooms/${seg(room)}/messages`, { text }, { 'Idempotency-Key': key }),
  sendUser: (user, text, key) => request('POST', `/api/users/${seg(user)}/messages`, { text }, { 'Idempotency-Key': key }),
  markRoom: (room, id) => request('POST', `/api/rooms/${seg(room)}/read`, { id }),
  markConversation: (user, id) => request('POST', `/api/conversations/${seg(user)}/read`, { id }),
};
