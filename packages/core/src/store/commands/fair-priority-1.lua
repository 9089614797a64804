--[[
  fair-priority: the BullMQ priority of a phase job, from its run's priority band and its key's load
  in the role queue: the number of that key's jobs still in the queue (waiting, delayed or active).
  Jobs of a key with many waiting get larger numbers (taken later), so keys take turns.

  KEYS[1] the key's jobs in this queue   <p>:fair:<queue>:<key>   (zset: job id -> its priority)

  ARGV[1] the queue's job key prefix `<p>:<queue>:` (BullMQ's job hash is that plus the job id)
  ARGV[2] job id
  ARGV[3] the band's first priority (from the run's priority 1..10)
  ARGV[4] the band's width (priorities in one band)

  Returns the priority. A job id already counted gets the priority it got then (adding a job twice
  is a no-op in BullMQ, and so here). Jobs that finished or were removed leave the zset here.
]]
local existing = redis.call('ZSCORE', KEYS[1], ARGV[2])
if existing then return tonumber(existing) end
local count = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local job = ARGV[1] .. id
  if redis.call('EXISTS', job) == 0 or redis.call('HEXISTS', job, 'finishedOn') == 1 then
    redis.call('ZREM', KEYS[1], id)
  else
    count = count + 1
  end
end
local width = tonumber(ARGV[4])
if count > width - 1 then count = width - 1 end
local priority = tonumber(ARGV[3]) + count
redis.call('ZADD', KEYS[1], priority, ARGV[2])
return priority
