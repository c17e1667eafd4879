package cluster

import "github.com/redis/go-redis/v9"

// The presence of a user is spread over these keys, all under the prefix:
//
//	inst:<id>       SET   users whose streams instance <id> holds
//	pres:<user>     SET   instances holding streams of <user>
//	streams:<user>  HASH  instance id → how many streams of <user> it holds
//	online          SET   users with at least one holder
//	instances       ZSET  instance id → its last heartbeat (ms, Redis's clock)
//
// Every change goes through one of the scripts below, so the keys agree
// (a field of streams:<user> exists exactly when the instance is in
// pres:<user>, and goes with it when a dead instance is dropped) and a transition is published by the one script that made it:
// SADD/SREM on online report whether the member was there, which is what
// makes "exactly once" hold even when two instances race, and what makes
// every script safe to run twice (go-redis retries a call whose reply was
// lost).
//
// The scripts build key names from the prefix instead of taking them in
// KEYS: a sweep touches the keys of users it only learns inside the
// script. That is fine on one Redis server (or a Sentinel-managed one),
// not on Redis Cluster.
//
// Time is Redis's (TIME), not the instances', so that a skewed clock on
// one machine cannot make another look dead.

// scriptLib is prepended to every script. ARGV[1] is always the prefix
// and ARGV[2] the id of the instance that runs the script.
const scriptLib = `
local p = ARGV[1]

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function join(id, user, streams)
  redis.call('HSET', p .. 'streams:' .. user, id, streams)
  redis.call('SADD', p .. 'inst:' .. id, user)
  redis.call('SADD', p .. 'pres:' .. user, id)
  if redis.call('SADD', p .. 'online', user) == 1 then
    redis.call('PUBLISH', p .. 'presence', '1' .. user)
  end
end

local function leave(id, user)
  redis.call('HDEL', p .. 'streams:' .. user, id)
  redis.call('SREM', p .. 'inst:' .. id, user)
  redis.call('SREM', p .. 'pres:' .. user, id)
  if redis.call('SCARD', p .. 'pres:' .. user) == 0
     and redis.call('SREM', p .. 'online', user) == 1 then
    redis.call('PUBLISH', p .. 'presence', '0' .. user)
  end
end

local function drop(id)
  redis.call('ZREM', p .. 'instances', id)
  for _, user in ipairs(redis.call('SMEMBERS', p .. 'inst:' .. id)) do
    leave(id, user)
  end
  redis.call('DEL', p .. 'inst:' .. id)
end
`

// joinScript: ARGV[3] is a user the instance now holds, ARGV[4] how many
// of their streams (1 if absent). It returns 1 when
// the instance was not registered (Redis lost its data, or a sweep took
// the instance for dead): its other users are missing then, and the
// caller must sync them. Registering here too means that a user joined in
// that state is still swept if the instance dies before its next
// heartbeat.
var joinScript = redis.NewScript(scriptLib + `
join(ARGV[2], ARGV[3], tonumber(ARGV[4]) or 1)
return redis.call('ZADD', p .. 'instances', 'NX', now(), ARGV[2])
`)

// leaveScript: ARGV[3] is a user the instance no longer holds.
var leaveScript = redis.NewScript(scriptLib + `
leave(ARGV[2], ARGV[3])
return 0
`)

// beatScript records the heartbeat and returns 1 when the instance was
// not registered (see joinScript).
var beatScript = redis.NewScript(scriptLib + `
return redis.call('ZADD', p .. 'instances', now(), ARGV[2])
`)

// syncScript makes Redis agree with the instance: ARGV[3:] are all the
// users it holds, each followed by how many of their streams. Users it no
// longer holds leave, the others join; only real transitions are
// published.
var syncScript = redis.NewScript(scriptLib + `
local id = ARGV[2]
local held = {}
for i = 3, #ARGV, 2 do held[ARGV[i]] = true end
for _, user in ipairs(redis.call('SMEMBERS', p .. 'inst:' .. id)) do
  if not held[user] then leave(id, user) end
end
for i = 3, #ARGV, 2 do join(id, ARGV[i], tonumber(ARGV[i + 1])) end
redis.call('ZADD', p .. 'instances', now(), id)
return 0
`)

// sweepScript drops the instances whose last heartbeat is older than
// ARGV[3] ms, except the caller (it is running, so it is not dead, only
// late: its next heartbeat will say so). A few at a time keeps the script
// short; the next sweep takes the rest. It returns how many it dropped.
var sweepScript = redis.NewScript(scriptLib + `
local cutoff = now() - tonumber(ARGV[3])
local dead = redis.call('ZRANGEBYSCORE', p .. 'instances', '-inf', '(' .. cutoff, 'LIMIT', 0, 64)
local n = 0
for _, id in ipairs(dead) do
  if id ~= ARGV[2] then
    drop(id)
    n = n + 1
  end
end
return n
`)

// goodbyeScript drops the caller: the users only it held go offline.
var goodbyeScript = redis.NewScript(scriptLib + `
drop(ARGV[2])
return 0
`)
