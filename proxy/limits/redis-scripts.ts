import { script } from './redis-client';

/**
 * The Lua scripts of the shared limits. Each runs atomically on the Redis server and touches only the
 * keys passed in KEYS, which share one hash tag, so a Redis Cluster (or a proxy in front of one) can run
 * it on one shard. Time is the server's (TIME), so pods with skewed clocks still refill one bucket alike.
 *
 * Per rule, KEYS holds a hash (fields r/ra: request bucket level and time, t/ta: token bucket) and a
 * sorted set of concurrency leases (member: lease id, score: expiry in ms). The bucket arithmetic is
 * bucket.ts's, in the same order: refill = elapsed * limit / window, capped at limit; a cost larger
 * than the whole bucket passes only when the bucket is full. Levels travel back as strings, because Redis
 * truncates Lua numbers to integers.
 */

const COMMON = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function level(v, at, limit, window)
  if not v then return limit end
  v = tonumber(v)
  at = tonumber(at)
  if now > at then return math.min(limit, v + (now - at) * limit / window) end
  return math.min(limit, v)
end
local function full_in(v, limit, window)
  if v >= limit then return 0 end
  return (limit - v) * window / limit
end
`;

/**
 * ADMIT. ARGV: lease id, lease ms, then 7 per rule: shadow (0/1), request limit, request window ms,
 * token limit, token window ms, token cost, concurrency limit (0 = the rule has none of that kind).
 * Checks every rule; when an enforced one refuses, nothing is taken. Otherwise takes from every rule
 * that admits (shadow rules that refuse are only reported). Reply: { refused (0/1), then per rule:
 * status (0 ok, 1 requests, 2 tokens, 3 concurrent), request level, token level ("" when none) }.
 */
export const ADMIT = script(`${COMMON}
local lease, lease_ms = ARGV[1], tonumber(ARGV[2])
local n = #KEYS / 2
local st, rl, tl, args = {}, {}, {}, {}
local refused = 0
for i = 1, n do
  local a = 2 + (i - 1) * 7
  local r = { shadow = ARGV[a + 1] == '1', rlim = tonumber(ARGV[a + 2]), rwin = tonumber(ARGV[a + 3]),
    tlim = tonumber(ARGV[a + 4]), twin = tonumber(ARGV[a + 5]), cost = tonumber(ARGV[a + 6]), clim = tonumber(ARGV[a + 7]) }
  args[i] = r
  local s = 0
  if r.clim > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', now)
    if redis.call('ZCARD', KEYS[2 * i]) >= r.clim then s = 3 end
  end
  local h = redis.call('HMGET', KEYS[2 * i - 1], 'r', 'ra', 't', 'ta')
  if r.rlim > 0 then
    rl[i] = level(h[1], h[2], r.rlim, r.rwin)
    if s == 0 and rl[i] < 1 and not (1 > r.rlim and rl[i] >= r.rlim) then s = 1 end
  end
  if r.tlim > 0 then
    tl[i] = level(h[3], h[4], r.tlim, r.twin)
    if s == 0 and tl[i] < r.cost and not (r.cost > r.tlim and tl[i] >= r.tlim) then s = 2 end
  end
  st[i] = s
  if s ~= 0 and not r.shadow then refused = 1 end
end
local out = { refused }
for i = 1, n do
  local r = args[i]
  if refused == 0 and st[i] == 0 then
    local ttl = 0
    if r.rlim > 0 then
      rl[i] = rl[i] - 1
      redis.call('HSET', KEYS[2 * i - 1], 'r', tostring(rl[i]), 'ra', now)
      ttl = math.max(ttl, full_in(rl[i], r.rlim, r.rwin))
    end
    if r.tlim > 0 then
      tl[i] = tl[i] - r.cost
      redis.call('HSET', KEYS[2 * i - 1], 't', tostring(tl[i]), 'ta', now)
      ttl = math.max(ttl, full_in(tl[i], r.tlim, r.twin))
    end
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2 * i - 1], math.ceil(ttl) + 1000) end
    if r.clim > 0 then
      redis.call('ZADD', KEYS[2 * i], now + lease_ms, lease)
      redis.call('PEXPIRE', KEYS[2 * i], lease_ms + 1000)
    end
  end
  out[#out + 1] = st[i]
  out[#out + 1] = rl[i] and tostring(rl[i]) or ''
  out[#out + 1] = tl[i] and tostring(tl[i]) or ''
end
return out
`);

/**
 * SETTLE: gives back what an admission took, in part or whole. ARGV: lease id, then 6 per rule:
 * request limit, request window ms, requests to give back (0/1), token limit, token window ms, tokens
 * to give back (negative: charge more, when real usage beat the estimate), then 1 to drop the lease.
 */
export const SETTLE = script(`${COMMON}
local lease = ARGV[1]
for i = 1, #KEYS / 2 do
  local a = 1 + (i - 1) * 7
  local rlim, rwin, rback = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local tlim, twin, tback = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local h = KEYS[2 * i - 1]
  if rback ~= 0 or tback ~= 0 then
    local v = redis.call('HMGET', h, 'r', 'ra', 't', 'ta')
    local ttl = 0
    if rlim > 0 then
      local l = math.min(rlim, level(v[1], v[2], rlim, rwin) + rback)
      redis.call('HSET', h, 'r', tostring(l), 'ra', now)
      ttl = math.max(ttl, full_in(l, rlim, rwin))
    end
    if tlim > 0 then
      local l = math.min(tlim, level(v[3], v[4], tlim, twin) + tback)
      redis.call('HSET', h, 't', tostring(l), 'ta', now)
      ttl = math.max(ttl, full_in(l, tlim, twin))
    end
    if ttl > 0 then redis.call('PEXPIRE', h, math.ceil(ttl) + 1000) else redis.call('DEL', h) end
  end
  if ARGV[a + 7] == '1' then redis.call('ZREM', KEYS[2 * i], lease) end
end
return 1
`);

/** RENEW: pushes the expiry of a running request's leases forward. KEYS: lease sets. ARGV: lease id, lease ms. */
export const RENEW = script(`${COMMON}
local lease, lease_ms = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS do
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + lease_ms, lease) == 1 then redis.call('PEXPIRE', KEYS[i], lease_ms + 1000) end
end
return 1
`);
