--[[
  create-run: write a new run only if none has its id, together with the outbox entry of its start.
  The create is the run's first commit: its outbox entry (`start_run`) is carried out by the client
  that created the run, or, should that client die first, by whoever reconciles the run's outbox
  (the manager, once the entry outlives its lease).

  KEYS[1] run hash            <p>:run:<id>
  KEYS[2] context hash        <p>:run:<id>:context
  KEYS[3] events stream       <p>:run:<id>:events
  KEYS[4] runs index zset     <p>:runs
  KEYS[5] active runs set     <p>:runs:active
  KEYS[6] run outbox hash     <p>:run:<id>:outbox   (field: committed version, value: entry JSON)
  KEYS[7] outboxes zset       <p>:outbox            (member: run id, score: oldest pending commit, ms)

  ARGV[1] meta (JSON)
  ARGV[2] state (JSON)
  ARGV[3] version (the state's)
  ARGV[4] creation time, epoch ms (index score, and the outbox entry's age)
  ARGV[5] run id
  ARGV[6] the run_created event (JSON)
  ARGV[7] the outbox entry (JSON)
  ARGV[8] context writes (JSON object: phase -> output JSON text)

  Returns 1 created, 0 a run with that id exists (nothing written).
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'state', ARGV[2], 'version', ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('XADD', KEYS[3], '*', 'type', 'run_created', 'data', ARGV[6])
redis.call('HSET', KEYS[6], ARGV[3], ARGV[7])
redis.call('ZADD', KEYS[7], 'NX', ARGV[4], ARGV[5])
for phase, value in pairs(cjson.decode(ARGV[8])) do
  redis.call('HSET', KEYS[2], phase, value)
end
return 1
