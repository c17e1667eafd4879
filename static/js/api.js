// Thin wrappers around the HTTP API. The session is an HttpOnly cookie that
// the page never sees; every write sends Content-Type: application/json,
// which the server requires of cookie-authenticated writes (CSRF defence).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path, body) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
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
    throw new ApiError(res.status, msg);
  }
  return data;
}

const seg = encodeURIComponent;

function page(limit, before) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (before) q.set('before', before);
  return q.toString();
}

export const api = {
  login: (username, password) => request('POST', '/api/login', { username, password }),
  logout: () => request('POST', '/api/logout'),
  me: () => request('GET', '/api/me'),
  rooms: () => request('GET', '/api/rooms'),
  conversations: () => request('GET', '/api/conversations'),
  join: (room) => request('POST', `/api/rooms/${seg(room)}/join`),
  leave: (room) => request('POST', `/api/rooms/${seg(room)}/leave`),
  members: (room) => request('GET', `/api/rooms/${seg(room)}/members`),
  roomHistory: (room, limit, before) => request('GET', `/api/rooms/${seg(room)}/messages?${page(limit, before)}`),
  userHistory: (user, limit, before) => request('GET', `/api/users/${seg(user)}/messages?${page(limit, before)}`),
  sendRoom: (room, text) => request('POST', `/api/rooms/${seg(room)}/messages`, { text }),
  sendUser: (user, text) => request('POST', `/api/users/${seg(user)}/messages`, { text }),
};
