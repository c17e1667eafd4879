// The baseline ssechat replaces: the original Socket.IO chat design, kept as
// it was so that the benchmark compares against the real thing.
//
//   client -> server  'join room'   {roomname, username}
//   client -> server  'new message' text        (text "@user rest" is a private message)
//   server -> room    'new message' {username, message}
//   server -> socket  'new pm'      {username, message}
//   server -> socket  'login'       {numUsers}  after joining
//   server -> room    'user joined' / 'user left' {username, numUsers}
//
// Nothing is persisted, as in the original. The one addition is an optional
// Socket.IO acknowledgement on 'new message', so the load generator can time
// the write path; clients that send no ack callback see the original protocol.
'use strict';

const http = require('http');
const express = require('express');
const { Server } = require('socket.io');

const app = express();
const server = http.createServer(app);
const io = new Server(server, {
  // The default 1 MB is more than any chat line needs.
  maxHttpBufferSize: 1e5,
});

app.get('/healthz', (req, res) => res.send('ok'));

// ANNOUNCE_JOINS=0 skips the 'user joined' / 'user left' broadcasts. The
// benchmark sets it only while seating thousands of fan-out subscribers,
// where announcing every join to every member is O(members^2) and would take
// minutes before the measured message path even starts; the connect-storm
// workload runs with the original behaviour.
const announce = process.env.ANNOUNCE_JOINS !== '0';

// username -> socket id, for private messages.
const users = new Map();

io.on('connection', (socket) => {
  socket.on('join room', (data) => {
    if (!data || typeof data.roomname !== 'string' || typeof data.username !== 'string') return;
    if (socket.room) socket.leave(socket.room);
    socket.username = data.username;
    socket.room = data.roomname;
    users.set(data.username, socket.id);
    socket.join(data.roomname);
    const room = io.sockets.adapter.rooms.get(data.roomname);
    const numUsers = room ? room.size : 0;
    socket.emit('login', { numUsers });
    if (announce) socket.to(data.roomname).emit('user joined', { username: socket.username, numUsers });
  });

  socket.on('new message', (text, ack) => {
    if (typeof text !== 'string' || !socket.room) return;
    const m = /^@(\S+)\s+([\s\S]*)$/.exec(text);
    if (m) {
      const to = users.get(m[1]);
      if (to) io.to(to).emit('new pm', { username: socket.username, message: m[2] });
    } else {
      socket.to(socket.room).emit('new message', { username: socket.username, message: text });
    }
    if (typeof ack === 'function') ack({ ok: true });
  });

  socket.on('disconnect', () => {
    if (!socket.room) return;
    if (users.get(socket.username) === socket.id) users.delete(socket.username);
    if (!announce) return;
    const room = io.sockets.adapter.rooms.get(socket.room);
    socket.to(socket.room).emit('user left', {
      username: socket.username,
      numUsers: room ? room.size : 0,
    });
  });
});

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
server.listen(port, host, () => {
  console.log(`socketio baseline listening on ${host}:${port}`);
});

// Stop cleanly on SIGTERM so the benchmark script can end it by its PID.
process.on('SIGTERM', () => {
  io.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
