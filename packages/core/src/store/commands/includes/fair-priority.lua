--[[
  fairPriority(group, jobKeyPrefix, jobId, bandStart, bandWidth): the BullMQ priority of a phase job,
  from its run's priority band and its fairness group's load in the role queue (the number of that
  group's jobs still in the queue: waiting, delayed or active). Jobs of a group with many waiting
  get larger numbers (taken later), so groups take turns. Used by fair-priority-1 (a job added
  outside a commit) and by apply-decision-7 (the phase jobs a commit adds).

  group         the group's jobs in this queue   <p>:fair:<queue>:<key>   (zset: job id -> its priority)
  jobKeyPrefix  the queue's job key prefix `<p>:<queue>:` (BullMQ's job hash is that plus the job id)
  jobId         the job's id
  bandStart     the band's first priority (from the run's priority 1..10)
  bandWidth     the band's width (priorities in one band)

  Returns the priority: band start + the group's jobs still in the queue, but never less than the
  largest priority a job of the group in the same band still holds, so the group's own jobs keep
  their order (BullMQ takes equal priorities in the order they were added). A job id already counted
  gets the priority it got then (adding a job twice is a no-op in BullMQ, and so here).

  A job leaves the zset when the commit that ends its phase iteration drops it (apply-decision-7),
  so the zset holds the group's jobs still queued. What a commit never ended (a job removed by hand,
  a run deleted meanwhile) is dropped here once it reaches the head: each call looks at the lowest
  numbers, the jobs taken first, and drops those gone or finished until it meets one still queued
  (at most 10 a call; one `ZRANGE` and one `HMGET` each, so a call whose head is still queued, the
  usual case, makes 7 Redis calls). A call costs O(log n) however long the group's backlog.
  The zset expires a week after the group's last add.
]]
local function fairPriority(group, jobKeyPrefix, jobId, bandStart, bandWidth)
  local existing = redis.call('ZSCORE', group, jobId)
  if existing then return tonumber(existing) end
  for _ = 1, 10 do
    local head = redis.call('ZRANGE', group, 0, 0)[1]
    if not head then break end
    -- BullMQ writes `name` with every job and `finishedOn` when it finishes: a job still queued has
    -- the first and not the second; a job gone has neither.
    local job = redis.call('HMGET', jobKeyPrefix .. head, 'name', 'finishedOn')
    if job[1] and not job[2] then break end
    redis.call('ZREM', group, head)
  end
  local start = tonumber(bandStart)
  local width = tonumber(bandWidth)
  local count = redis.call('ZCARD', group)
  if count > width - 1 then count = width - 1 end
  local priority = start + count
  local top = redis.call('ZREVRANGEBYSCORE', group, start + width - 1, start, 'WITHSCORES', 'LIMIT', 0, 1)
  if top[2] and tonumber(top[2]) > priority then priority = tonumber(top[2]) end
  redis.call('ZADD', group, priority, jobId)
  -- A group that stops adding jobs leaves no zset behind for good: a week after its last add it goes
  -- (its count starts again from 0, which only costs fairness accuracy, never a job).
  redis.call('EXPIRE', group, 604800)
  return priority
end
