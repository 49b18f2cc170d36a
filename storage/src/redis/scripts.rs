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

/// Checks ownership, renews the lease, then runs the batch's commands in order, unless this
/// owner applied the batch already.
///
/// Ownership holds when the owner key holds our id and the fencing counter our token (a
/// server restarted with our id took the lease back with a newer token). If the key is gone (its lease lapsed, say
/// while Redis was down) but the fencing counter still holds our token, nobody took over in
/// between, so the lease is taken back. Otherwise the reply is the error
/// `SWITCHBOARD_LOST_OWNERSHIP <holder>` and nothing is written.
///
/// Batches are numbered from 1 by each owner, and the applied key holds `<fencing token>
/// <number>` of the last one applied. A batch at or below it was applied already (a batch
/// sent again after a lost connection, possibly after later ones were applied): the script
/// replies -1 and writes nothing, so every batch is applied exactly once and in order.
///
/// The commands come as MessagePack chunks (see `encode.rs`): inline in ARGV, or, for a batch
/// too large for one command, staged beforehand in a list that this script pops and deletes.
/// Batch number 0 has no commands: the script only renews the lease.
///
/// KEYS: owner, fence, staging list, applied. ARGV: owner id, fencing token, lease in ms,
/// `inline` | `staged`, `renew` | `keep` (whether to renew a held lease), batch number,
/// chunks... Replies the number of commands run, or -1.
pub(crate) static COMMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
local fence = redis.call('GET', KEYS[2])
if holder == ARGV[1] and fence == ARGV[2] then
  if ARGV[5] == 'renew' then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
elseif holder == false and fence == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
  return redis.error_reply('SWITCHBOARD_LOST_OWNERSHIP ' .. (holder or 'nobody') ..
    ' (fencing token now ' .. (fence or 'none') .. ', ours ' .. ARGV[2] .. ')')
end
local batch = tonumber(ARGV[6])
if batch == 0 then
  return 0
end
local applied = redis.call('GET', KEYS[4])
if applied then
  local token, number = string.match(applied, '^(%S+) (%d+)$')
  if token == ARGV[2] and tonumber(number) >= batch then
    if ARGV[4] == 'staged' then
      redis.call('DEL', KEYS[3])
    end
    return -1
  end
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
if ARGV[4] == 'staged' then
  while true do
    local chunk = redis.call('LPOP', KEYS[3])
    if not chunk then break end
    run(chunk)
  end
else
  for j = 7, #ARGV do
    run(ARGV[j])
  end
end
redis.call('SET', KEYS[4], ARGV[2] .. ' ' .. ARGV[6])
return commands
",
    )
});
