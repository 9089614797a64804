--[[
  admit-run: admit a submitted run against its concurrency key's limit, or queue it in the key's FIFO.
  Counting the key's active runs and admitting (or queueing) is one step, so two submitters can never
  both take the last slot.

  KEYS[1] run hash            <p>:run:<id>
  KEYS[2] events stream       <p>:run:<id>:events
  KEYS[3] key's active set    <p>:concurrency:<key>:active   (run ids holding a slot)
  KEYS[4] key's queue list    <p>:concurrency:<key>:queued   (run ids waiting, oldest first)

  ARGV[1] run id
  ARGV[2] the key's limit (runs active at once)
  ARGV[3] expected version (the run as the caller read it, status `created`)
  ARGV[4] the run's state with status `queued` (JSON), written when it is queued
  ARGV[5] that state's version
  ARGV[6] now, epoch ms (the run_queued event's time)
  ARGV[7] the concurrency key (rendered), for the run_queued event

  Returns 1 admitted (now, or by an earlier call), 0 queued (now, or by an earlier call),
  -1 no such run, -2 the run moved on (started or cancelled since it was read): nothing to do.

  A run is admitted only when the key's FIFO is empty as well as a slot free, so a run never
  overtakes one queued before it.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return 1 end
if redis.call('LPOS', KEYS[4], ARGV[1]) then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'version')) ~= tonumber(ARGV[3]) then return -2 end
local limit = tonumber(ARGV[2])
if redis.call('SCARD', KEYS[3]) < limit and redis.call('LLEN', KEYS[4]) == 0 then
  redis.call('SADD', KEYS[3], ARGV[1])
  return 1
end
local position = redis.call('RPUSH', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'version', ARGV[5])
local event = '{"type":"run_queued","at":' .. ARGV[6] .. ',"key":' .. cjson.encode(ARGV[7]) .. ',"limit":' .. ARGV[2] .. ',"position":' .. position .. '}'
redis.call('XADD', KEYS[2], '*', 'type', 'run_queued', 'data', event)
return 0
