//! The Lua scripts: each runs atomically inside Redis, so the ownership check and the writes of a
//! commit can never be split by another client.

use std::sync::LazyLock;

/// Error code the commit script replies with when this server no longer owns the prefix.
pub(crate) const LOST_OWNERSHIP_CODE: &str = "SWITCHBOARD_LOST_OWNERSHIP";

/// Takes the prefix if nobody holds it, or if its holder has our id (this server restarted:
/// the holder is its dead predecessor). Every taking draws a new fencing token, so even a
/// predecessor with our id can write nothing more, and records where we serve.
///
/// KEYS: owner, fence, active. ARGV: owner id, lease in ms, advertised URL (may be empty).
/// Replies `{"acquired", fencing token, "new" | "reclaimed"}` or `{"held", holder, remaining
/// lease in ms, the holder's advertised URL or ""}`.
pub(crate) static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local token = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[3], 'owner', ARGV[1], 'url', ARGV[3])
  local how = 'new'
  if holder == ARGV[1] then how = 'reclaimed' end
  return {'acquired', tostring(token), how}
end
local active = redis.call('HMGET', KEYS[3], 'owner', 'url')
local url = ''
if active[1] == holder and active[2] then url = active[2] end
return {'held', holder, tostring(redis.call('PTTL', KEYS[1])), url}
",
    )
});

/// Gives the prefix up, if we still hold it (a clean shutdown lets the next server start at
/// once instead of waiting for the lease to lapse).
///
/// KEYS: owner. ARGV: owner id. Replies 1 when released.
pub(crate) static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Applies a batch's units (see `keys::Unit`), each exactly once, unless a newer owner fenced
/// one off; in `owner` mode it first checks the owner lease and renews it.
///
/// Ownership (`owner` mode) holds when the owner key holds our id and the fencing counter our
/// token (a server restarted with our id took the lease back with a newer token). If the key
/// is gone (its lease lapsed, say while Redis was down) but the counter still holds our token,
/// nobody took over in between, so the lease is taken back. Otherwise the reply is the error
/// `SWITCHBOARD_LOST_OWNERSHIP <holder>` and nothing is written. `units` mode (the queue units
/// of a Redis Cluster, whose slots cannot reach the owner key) skips this: the units' own
/// fencing tokens stop a deposed owner, because a new owner fences every unit before reading
/// it (see `FENCE`).
///
/// Each unit's `applied` key holds `<fencing token> <batch number>` of the last batch that
/// wrote it. Batches are numbered from 1 by each owner. A unit whose token is above ours was
/// fenced by a newer owner: the reply is `SWITCHBOARD_LOST_OWNERSHIP` and nothing is written. A
/// unit at or beyond this batch's number was applied already (a batch sent again after a lost
/// connection or a failover): it is skipped, its `applied` key written again unchanged so that a
/// `WAIT` after this script also covers the first application.
///
/// The commands come as MessagePack chunks (see `encode.rs`): inline in ARGV, or, for a batch
/// too large for one command, staged beforehand in a list that this script pops and deletes.
/// Batch number 0 has no units: the script only checks and renews the lease.
///
/// KEYS (`owner` mode): owner, fence, staging list, then each unit's applied key; (`units`
/// mode): each unit's applied key. ARGV: mode, owner id, fencing token, lease in ms, `inline` |
/// `staged`, `renew` | `keep`, batch number, unit count U, U chunk counts, chunks... Replies
/// the number of commands run, or -1 when every unit had been applied already.
pub(crate) static COMMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local first_unit = 1
if ARGV[1] == 'owner' then
  first_unit = 4
  local holder = redis.call('GET', KEYS[1])
  local fence = redis.call('GET', KEYS[2])
  if holder == ARGV[2] and fence == ARGV[3] then
    if ARGV[6] == 'renew' then
      redis.call('PEXPIRE', KEYS[1], ARGV[4])
    end
  elseif holder == false and fence == ARGV[3] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
  else
    return redis.error_reply('SWITCHBOARD_LOST_OWNERSHIP ' .. (holder or 'nobody') ..
      ' (fencing token now ' .. (fence or 'none') .. ', ours ' .. ARGV[3] .. ')')
  end
end
local batch = tonumber(ARGV[7])
if batch == 0 then
  return 0
end
local token = tonumber(ARGV[3])
local units = tonumber(ARGV[8])
local seen = {}
local any_new = false
for u = 1, units do
  local applied = redis.call('GET', KEYS[first_unit + u - 1])
  local new = true
  if applied then
    local t, n = string.match(applied, '^(%d+) (%d+)$')
    t = tonumber(t)
    if t > token then
      return redis.error_reply('SWITCHBOARD_LOST_OWNERSHIP a newer owner (' ..
        KEYS[first_unit + u - 1] .. ' has fencing token ' .. t .. ', ours ' .. token .. ')')
    end
    if t == token and tonumber(n) >= batch then
      new = false
    end
  end
  seen[u] = applied
  if new then any_new = true end
end
local commands = 0
local function run(chunk)
  local words = cmsgpack.unpack(chunk)
  local i, n = 1, #words
  while i <= n do
    local count = words[i]
    redis.call(unpack(words, i + 1, i + count))
    i = i + count + 1
    commands = commands + 1
  end
end
local staged = ARGV[5] == 'staged'
local next_chunk = 9 + units
for u = 1, units do
  local key = KEYS[first_unit + u - 1]
  local new = true
  if seen[u] then
    local t, n = string.match(seen[u], '^(%d+) (%d+)$')
    new = not (tonumber(t) == token and tonumber(n) >= batch)
  end
  for c = 1, tonumber(ARGV[8 + u]) do
    local chunk
    if staged then
      chunk = redis.call('LPOP', KEYS[3])
    else
      chunk = ARGV[next_chunk]
      next_chunk = next_chunk + 1
    end
    if new then run(chunk) end
  end
  if new then
    redis.call('SET', key, ARGV[3] .. ' ' .. ARGV[7])
  else
    redis.call('SET', key, seen[u])
  end
end
if staged then
  redis.call('DEL', KEYS[3])
end
if not any_new then
  return -1
end
return commands
",
    )
});

/// Fences one unit off for a new owner before it reads the unit: a deposed owner's later
/// writes to it are refused (see `COMMIT`), so what the new owner reads stays what it read.
///
/// KEYS: the unit's applied key. ARGV: fencing token. Replies 1, or the error
/// `SWITCHBOARD_LOST_OWNERSHIP` when a newer owner fenced it first.
pub(crate) static FENCE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local applied = redis.call('GET', KEYS[1])
if applied then
  local t = tonumber(string.match(applied, '^(%d+) '))
  if t > tonumber(ARGV[1]) then
    return redis.error_reply('SWITCHBOARD_LOST_OWNERSHIP a newer owner (' .. KEYS[1] ..
      ' has fencing token ' .. t .. ', ours ' .. ARGV[1] .. ')')
  end
  if t == tonumber(ARGV[1]) then
    return 1
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' 0')
return 1
",
    )
});

/// Moves a prefix written in layout 2 (prefix-wide keys without a hash tag) to layout 3; the
/// queues' own keys are the same in both. Marks the old layout key 3, so that a layout-2 build
/// refuses the data instead of misreading it.
///
/// KEYS: old queues, old layout, old fence, old applied, new queues, new layout (the old
/// fencing tokens do not matter: no queue key of layout 2 carries one).
/// Replies the number of queues moved.
pub(crate) static MOVE_LAYOUT_2: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local names = redis.call('SMEMBERS', KEYS[1])
for i = 1, #names, 1000 do
  redis.call('SADD', KEYS[5], unpack(names, i, math.min(i + 999, #names)))
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('SET', KEYS[2], '3')
redis.call('SET', KEYS[6], '3')
return #names
",
    )
});
