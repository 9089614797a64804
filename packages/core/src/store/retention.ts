/**
 * Retention of finished runs in Redis: the Lua shared by the commit that finishes a run, the archive
 * (which lets a run expire only once PostgreSQL holds it) and holds between runs.
 *
 * Fleet-wide settings live in the hash `<p>:settings` (written by the manager at start from
 * `FLEET_RUN_RETENTION` and `FLEET_HISTORY_URL`, so every process that commits agrees):
 * - `run_retention_ms`: how long a finished run's keys stay, ms; `0` keeps them. Absent: {@link DEFAULT_RUN_RETENTION_MS}.
 * - `archive`: `1` when an archive is configured: a finished run joins `<p>:archive:pending` and
 *   gets its expiry only after the archive write succeeded.
 *
 * A run may be held by open runs (`<run>:heldby`, mirrored by the holder's `<run>:holds`): a child
 * run by its parent, a re-run run by its rerun. A held run gets no expiry until every holder finished;
 * the commit that finishes a holder re-checks the runs it held.
 */

/** `FLEET_RUN_RETENTION` default: 7 days, ms. */
export const DEFAULT_RUN_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** The keys of one run, as suffixes of its record key `<p>:run:<id>` (staged outputs carry their own expiry). */
export const RUN_KEY_SUFFIXES = ['', ':context', ':events', ':labels', ':links:fallback_run_id', ':links:reruns', ':links:children', ':holds', ':heldby', ':budget', ':batches', ':tool-journal'] as const;

/**
 * Lua that defines `fleet_retain(prefix, id, settings, finished)`: sets the expiry of a finished run's
 * keys unless it is not finished, waits for its archive write, is held by an open run, or retention
 * is off. `settings` is the settings hash's `{run_retention_ms, archive}` when the caller has read
 * them (nil: read here); `finished` true when the caller knows the run has its result (the commit
 * that writes it), which saves the check.
 * @returns 1 when the expiry was set.
 */
export const RETAIN_FUNCTION_LUA = `
-- The conversation claim the run holds (<p>:conversation:<user_id>:<conversation_id>, as
-- registry/run-labels.ts names it), or nil: it lives as long as the run.
local function fleet_conversation_claim(prefix, id)
  local who = redis.call('HMGET', prefix .. ':run:' .. id .. ':labels', 'user_id', 'conversation_id')
  if not who[1] or not who[2] then return nil end
  local claim = prefix .. ':conversation:' .. who[1] .. ':' .. who[2]
  if redis.call('GET', claim) == id then return claim end
  return nil
end
local function fleet_retain(prefix, id, settings, finished)
  local run = prefix .. ':run:' .. id
  if not finished and redis.call('HEXISTS', run, 'result') == 0 then return 0 end
  settings = settings or redis.call('HMGET', prefix .. ':settings', 'run_retention_ms', 'archive')
  if settings[2] == '1' and redis.call('ZSCORE', prefix .. ':archive:pending', id) then return 0 end
  for _, holder in ipairs(redis.call('SMEMBERS', run .. ':heldby')) do
    local st = redis.call('HGET', prefix .. ':run:' .. holder, 'state')
    if st then
      local s = cjson.decode(st).status
      if s ~= 'completed' and s ~= 'failed' and s ~= 'cancelled' then return 0 end
    end
  end
  local ms = tonumber(settings[1] or '${DEFAULT_RUN_RETENTION_MS}')
  if ms <= 0 then return 0 end
  for _, suffix in ipairs({${RUN_KEY_SUFFIXES.map((s) => `'${s}'`).join(', ')}}) do
    redis.call('PEXPIRE', run .. suffix, ms)
  end
  local claim = fleet_conversation_claim(prefix, id)
  if claim then redis.call('PEXPIRE', claim, ms) end
  return 1
end
local function fleet_persist(prefix, id)
  local run = prefix .. ':run:' .. id
  for _, suffix in ipairs({${RUN_KEY_SUFFIXES.map((s) => `'${s}'`).join(', ')}}) do
    redis.call('PERSIST', run .. suffix)
  end
  local claim = fleet_conversation_claim(prefix, id)
  if claim then redis.call('PERSIST', claim) end
end
`;

/**
 * The part of the finishing commit that concerns retention (KEYS[1] the run key, ARGV[5] the run id):
 * queue the run for the archive or set its expiry, and re-check the runs it held.
 */
export const ON_RUN_FINISHED_LUA = `
do
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[5] - 5)
  local settings = redis.call('HMGET', prefix .. ':settings', 'run_retention_ms', 'archive')
  if settings[2] == '1' then
    local t = redis.call('TIME')
    redis.call('ZADD', prefix .. ':archive:pending', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[5])
  else
    fleet_retain(prefix, ARGV[5], settings, true)
  end
  for _, held in ipairs(redis.call('SMEMBERS', KEYS[1] .. ':holds')) do fleet_retain(prefix, held, settings) end
end
`;

/** The part of a commit that reopens a finished run (a resume): it stays until it finishes again. */
export const ON_RUN_REOPENED_LUA = `
do
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[5] - 5)
  fleet_persist(prefix, ARGV[5])
  redis.call('ZREM', prefix .. ':archive:pending', ARGV[5])
end
`;

/** Keep run ARGV[2] while run ARGV[3] is open (ARGV[1] the prefix): no expiry until ARGV[3] finished. */
export const HOLD_RUN_LUA = `${RETAIN_FUNCTION_LUA}
local held = ARGV[1] .. ':run:' .. ARGV[2]
redis.call('SADD', held .. ':heldby', ARGV[3])
redis.call('SADD', ARGV[1] .. ':run:' .. ARGV[3] .. ':holds', ARGV[2])
fleet_persist(ARGV[1], ARGV[2])
return fleet_retain(ARGV[1], ARGV[2])
`;

/**
 * After the archive wrote run ARGV[2] (ARGV[1] the prefix): leave the pending set, then get the expiry.
 * @returns 1 when the expiry was set.
 */
export const ARCHIVED_LUA = `${RETAIN_FUNCTION_LUA}
redis.call('ZREM', ARGV[1] .. ':archive:pending', ARGV[2])
return fleet_retain(ARGV[1], ARGV[2])
`;

/**
 * Take up to ARGV[3] runs waiting for the archive, due at ARGV[1] (epoch ms): each is leased until
 * ARGV[2] (it comes due again then, should the archive job be lost) and returned.
 */
export const CLAIM_ARCHIVE_LUA = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
`;

/** Delete every key of run ARGV[2] (ARGV[1] the prefix) and its index entries. @returns 1 when it existed. */
export const PURGE_RUN_LUA = `
local run = ARGV[1] .. ':run:' .. ARGV[2]
local existed = redis.call('EXISTS', run)
for _, suffix in ipairs({${RUN_KEY_SUFFIXES.map((s) => `'${s}'`).join(', ')}}) do redis.call('DEL', run .. suffix) end
redis.call('ZREM', ARGV[1] .. ':runs', ARGV[2])
redis.call('SREM', ARGV[1] .. ':runs:active', ARGV[2])
redis.call('ZREM', ARGV[1] .. ':archive:pending', ARGV[2])
return existed
`;
