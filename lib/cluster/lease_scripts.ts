// The Lua scripts of the fleet-wide caps (decision 48), run atomically by Redis. A cap is a sorted
// set: member = one lease "<owner>:<seq>" (owner = "<node>:<boot id>", one per process lifetime),
// score = its expiry in Redis TIME (ms). Beside it, a sorted set of the owners that want more slots
// than they hold (score = expiry), and one key per prefix that records when Redis started empty.

/**
 * mqcLeaseSync: renews, gives back and acquires one owner's leases of one cap in one call.
 *   KEYS: leases, wanters, boot
 *   ARGV: owner, cap, ttlMs, target, nextSeq, nRelease, release x nRelease, renew...
 * ttlMs is a lease's life: leaseTtl for a cap's, leaseTtl + the window for a throttle's rate slots
 * (cluster_throttles.ts); the grace after an empty start is the first caller's ttlMs.
 * Expired leases and wanters are pruned first. A lease to renew that Redis still holds gets the new
 * expiry; one it lost (expired, or Redis restarted empty) is added again while the cap has room, or
 * always during the grace after an empty start (the boot key was missing: for ttlMs after that,
 * nobody acquires new leases, so the holders re-assert theirs before anyone can over-grant). Then,
 * out of the grace, new leases up to target while the cap has room; while another owner wants
 * slots and holds fewer than its share (floor(cap / owners holding or wanting), at least 1), not
 * beyond the share.
 * Returns { nextSeq, share, deficient (0/1), grace (0/1), held lease... }.
 */
export const LEASE_SYNC = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner = ARGV[1]
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local target = tonumber(ARGV[4])
local seq = tonumber(ARGV[5])
local nrel = tonumber(ARGV[6])
local exp = now + ttl
local boot = redis.call('GET', KEYS[3])
if not boot then
  boot = now + ttl
  redis.call('SET', KEYS[3], boot)
end
local grace = now < tonumber(boot)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 7, 6 + nrel do redis.call('ZREM', KEYS[1], ARGV[i]) end
local count = redis.call('ZCARD', KEYS[1])
local held = {}
for i = 7 + nrel, #ARGV do
  local m = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], m) then
    redis.call('ZADD', KEYS[1], exp, m)
    held[#held + 1] = m
  elseif grace or count < cap then
    redis.call('ZADD', KEYS[1], exp, m)
    count = count + 1
    held[#held + 1] = m
  end
end
if #held < target then redis.call('ZADD', KEYS[2], exp, owner) else redis.call('ZREM', KEYS[2], owner) end
local holds = {}
local owners = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local o = string.match(m, '^(.*):[^:]*$')
  if o then
    if not holds[o] then
      holds[o] = 0
      owners = owners + 1
    end
    holds[o] = holds[o] + 1
  end
end
local wanters = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, w in ipairs(wanters) do
  if not holds[w] then
    holds[w] = 0
    owners = owners + 1
  end
end
if target > 0 and not holds[owner] then owners = owners + 1 end
local share = cap
if owners > 0 then share = math.max(1, math.floor(cap / owners)) end
local deficient = 0
for _, w in ipairs(wanters) do
  if w ~= owner and holds[w] < share then deficient = 1 end
end
local limit = target
if deficient == 1 and limit > share then limit = share end
if not grace then
  while #held < limit and count < cap do
    local m = owner .. ':' .. seq
    seq = seq + 1
    redis.call('ZADD', KEYS[1], exp, m)
    count = count + 1
    held[#held + 1] = m
  end
end
local out = { seq, share, deficient, grace and 1 or 0 }
for _, m in ipairs(held) do out[#out + 1] = m end
return out
`;

/** mqcLeaseRelease: gives leases back. KEYS: leases, wanters; ARGV: owner, lease... */
export const LEASE_RELEASE = `
for i = 2, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return #ARGV - 1
`;
