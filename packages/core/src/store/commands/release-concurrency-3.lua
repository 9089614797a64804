--[[
  release-concurrency: a run of a concurrency key finished (or was cancelled while queued): free its
  slot and admit the key's next queued runs, oldest first, while the key is under its limit.
  Carried out from the outbox of the commit that finished the run, so a crash before it (or before
  the admitted runs are started) is repaired by the next reconcile of that outbox; the admitted runs
  are recorded on the finished run, so the repeat returns the same ones (and frees nothing twice).

  KEYS[1] finished run hash   <p>:run:<id>
  KEYS[2] key's active set    <p>:concurrency:<key>:active
  KEYS[3] key's queue list    <p>:concurrency:<key>:queued

  ARGV[1] run id
  ARGV[2] the key's limit
  ARGV[3] the run hash field recording what this release admitted (`admitted:<version>`)
  ARGV[4] the run key prefix `<p>:run:` (a queued run whose record is gone, expired, is dropped)

  Returns the ids of the runs admitted, for the caller to start.
]]
local done = redis.call('HGET', KEYS[1], ARGV[3])
if done then return cjson.decode(done) end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('LREM', KEYS[3], 0, ARGV[1])
local limit = tonumber(ARGV[2])
local admitted = {}
while redis.call('SCARD', KEYS[2]) < limit do
  local nxt = redis.call('LPOP', KEYS[3])
  if not nxt then break end
  if redis.call('EXISTS', ARGV[4] .. nxt) == 1 then
    redis.call('SADD', KEYS[2], nxt)
    admitted[#admitted + 1] = nxt
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- cjson writes an empty table as {}, which decodes back to an empty table: the same empty reply.
  redis.call('HSET', KEYS[1], ARGV[3], cjson.encode(admitted))
end
return admitted
