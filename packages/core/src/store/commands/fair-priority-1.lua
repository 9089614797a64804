--[[
  fair-priority: the BullMQ priority of a phase job, from its run's priority band and its key's load
  in the role queue: the number of that key's jobs still in the queue (waiting, delayed or active).
  Jobs of a key with many waiting get larger numbers (taken later), so keys take turns.

  KEYS[1] the key's jobs in this queue   <p>:fair:<queue>:<key>   (zset: job id -> its priority)

  ARGV[1] the queue's job key prefix `<p>:<queue>:` (BullMQ's job hash is that plus the job id)
  ARGV[2] job id
  ARGV[3] the band's first priority (from the run's priority 1..10)
  ARGV[4] the band's width (priorities in one band)

  Returns the priority: band start + the key's jobs still in the queue, but never less than the
  largest priority a job of the key in the same band still holds, so the key's own jobs keep their
  order (BullMQ takes equal priorities in the order they were added). A job id already counted gets
  the priority it got then (adding a job twice is a no-op in BullMQ, and so here).

  A job leaves the zset when the commit that ends its phase iteration drops it (apply-decision-7),
  so the zset holds the key's jobs still queued. What a commit never ended (a job removed by hand, a
  run deleted meanwhile) is dropped here once it reaches the head: each call looks at the lowest
  numbers, the jobs taken first, and drops those gone or finished until it meets one still queued
  (at most 10 a call). A call costs O(log n) however long the key's backlog.
  The zset expires a week after the key's last add.
]]
local existing = redis.call('ZSCORE', KEYS[1], ARGV[2])
if existing then return tonumber(existing) end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, 9)) do
  local job = ARGV[1] .. id
  if redis.call('EXISTS', job) == 1 and redis.call('HEXISTS', job, 'finishedOn') == 0 then break end
  redis.call('ZREM', KEYS[1], id)
end
local start = tonumber(ARGV[3])
local width = tonumber(ARGV[4])
local count = redis.call('ZCARD', KEYS[1])
if count > width - 1 then count = width - 1 end
local priority = start + count
local top = redis.call('ZREVRANGEBYSCORE', KEYS[1], start + width - 1, start, 'WITHSCORES', 'LIMIT', 0, 1)
if top[2] and tonumber(top[2]) > priority then priority = tonumber(top[2]) end
redis.call('ZADD', KEYS[1], priority, ARGV[2])
-- A key that stops adding jobs leaves no zset behind for good: a week after its last add it goes
-- (its count starts again from 0, which only costs fairness accuracy, never a job).
redis.call('EXPIRE', KEYS[1], 604800)
return priority
