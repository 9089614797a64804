--[[
  decide-fire: decide, once, what a schedule's fire does; every later call for the same fire gets the
  same decision back, so a fire processed twice (by two managers, or again after a crash) starts at
  most one run.

  KEYS[1] the fire's decision key (string, JSON), `<p>:schedule-fire:<schedule id>:<fire ms>`
  KEYS[2] the schedule's state (hash): last_run_id, last_started_at, last_fire_at, last_outcome, <outcome>_total
  KEYS[3] the schedule's runs (sorted set: run id scored by fire time)

  ARGV[1] the run id to start when the decision is to start one
  ARGV[2] overlap policy: skip | allow | cancel_previous
  ARGV[3] the fleet prefix (a run record is `<prefix>:run:<id>`; it shares the prefix's hash tag)
  ARGV[4] now, epoch ms
  ARGV[5] how long the decision is kept, ms
  ARGV[6] the fire time the run stands for, epoch ms
  ARGV[7] 'missed' (a missed fire under catch_up none: recorded, nothing started) or 'fire'
  ARGV[8] how long a decided run whose record does not exist yet counts as still starting, ms
  ARGV[9] JSON object merged into the decision (e.g. {"manual": true})
  ARGV[10] how many runs the schedule's run index keeps

  Returns {decision, new}: the decision (JSON: {action: start|skipped|missed, run_id?, cancel_run_id?,
  previous_run_id?, fire_time, decided_at, ...ARGV[9]}), and 1 when this call made it, 0 when an
  earlier call did.
]]
local existing = redis.call('GET', KEYS[1])
if existing then return {existing, 0} end

local now = tonumber(ARGV[4])
local decision = cjson.decode(ARGV[9])
decision['fire_time'] = tonumber(ARGV[6])
decision['decided_at'] = now

if ARGV[7] == 'missed' then
  decision['action'] = 'missed'
else
  local last = redis.call('HGET', KEYS[2], 'last_run_id')
  local active = false
  if last then
    local state = redis.call('HGET', ARGV[3] .. ':run:' .. last, 'state')
    if state then
      local status = cjson.decode(state).status
      active = status ~= 'completed' and status ~= 'failed' and status ~= 'cancelled'
    else
      -- Decided but not created yet (its starter is at work, or died and its fire is retried), or
      -- gone past its retention: only a recent decision counts as a run still starting.
      local at = tonumber(redis.call('HGET', KEYS[2], 'last_started_at') or '0')
      active = now - at < tonumber(ARGV[8])
    end
  end
  if active and ARGV[2] == 'skip' then
    decision['action'] = 'skipped'
    decision['previous_run_id'] = last
  else
    decision['action'] = 'start'
    decision['run_id'] = ARGV[1]
    if active then
      decision['previous_run_id'] = last
      if ARGV[2] == 'cancel_previous' then decision['cancel_run_id'] = last end
    end
    redis.call('HSET', KEYS[2], 'last_run_id', ARGV[1], 'last_started_at', now)
    redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
    local keep = tonumber(ARGV[10])
    if redis.call('ZCARD', KEYS[3]) > keep then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -keep - 1) end
  end
end

local encoded = cjson.encode(decision)
redis.call('HSET', KEYS[2], 'last_fire_at', ARGV[6], 'last_outcome', decision['action'], 'last_decision', encoded)
redis.call('HINCRBY', KEYS[2], decision['action'] .. '_total', 1)
redis.call('SET', KEYS[1], encoded, 'PX', ARGV[5])
return {encoded, 1}
