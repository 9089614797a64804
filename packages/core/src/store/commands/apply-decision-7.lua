--[[
  apply-decision: commit a decision if the run's version is still the one it was computed from,
  together with the outbox of effects still to carry out. With ARGV[6] 'create', the commit creates
  the run: written only if no run has its id, with its meta and index entries, and the decision
  (the run's start) in the same step; or, for a run to be admitted first, its first state as the
  decision, with its start as the outbox entry (../run-store.ts `createRun`).

  KEYS[1] run hash            <p>:run:<id>
  KEYS[2] context hash        <p>:run:<id>:context
  KEYS[3] events stream       <p>:run:<id>:events
  KEYS[4] active runs set     <p>:runs:active
  KEYS[5] deadlines zset      <p>:deadlines
  KEYS[6] run outbox hash     <p>:run:<id>:outbox   (field: committed version, value: effects JSON)
  KEYS[7] outboxes zset       <p>:outbox            (member: run id, score: oldest pending commit, ms)

  ARGV[1] expected version (the fence; not read when creating)
  ARGV[2] new version
  ARGV[3] new state (JSON)
  ARGV[4] result (JSON), or '' when the decision does not finish the run
  ARGV[5] run id
  ARGV[6] '1' when the decision reopens a finished run (resume), 'create' when it creates the run
          (then three more arguments after the context writes: the meta JSON, the creation time,
          epoch ms, and the runs index zset `<p>:runs`, under the same hash tag as KEYS)
  ARGV[7] outbox entry (JSON), or '' when the decision leaves no effect
  ARGV[8] commit time, epoch ms (the outbox's age)
  ARGV[9] the number of context writes, c; each is two arguments after the phase jobs (below):
          the phase, its output JSON text (each output its own argument, not JSON inside JSON: an
          output is the largest thing a commit carries, and escaping it twice, then decoding it here,
          cost more than the rest of the script)
  ARGV[10] run events (JSON array of [type, data JSON text])
  ARGV[11] deadlines to set (JSON array of [score, member])
  ARGV[12] deadlines to remove (JSON array of members)
  ARGV[13] jobs the decision ends, to drop from their fairness zsets (JSON array of [zset key, job
           id]; the keys are `<p>:fair:<queue>:<fairness key>`, under the same hash tag as KEYS)
  ARGV[14] earlier outbox entries this commit carries out, to drop (JSON array of committed
           versions: a run's start, the create's entry, is carried out by the commit of `run_started`)
  ARGV[15] the number of phase jobs the decision queues, n (0 when none); then, for each job, 18
           arguments from ARGV[16 + 18 × (i − 1)]:
             1–5   its fair priority's inputs (includes/fair-priority.lua): fairness zset, the queue's
                   job key prefix `<p>:<queue>:`, job id, band start, band width
             6–14  BullMQ's addPrioritizedJob KEYS (9), under the fleet's hash tag like KEYS
             15–18 the job's name, timestamp (epoch ms), data JSON and options JSON (BullMQ's names,
                   without the priority: the fair priority is set here)
           then the c context writes: ARGV[16 + 18 × n + 2 × (k − 1)] phase, the next its output JSON
           The jobs are BullMQ's own adds (its script, included, given the msgpack arguments and
           options `Job#addJob` would pack: packed here, so the command carries strings only):
           written with the state, so a phase is never queued in the state without its job, nor the
           other way round.

  Returns 1 committed, 0 the version moved on or, creating, a run with that id exists (nothing
  written), -1 no such run.

  Retention (../retention.ts, included): the commit that finishes a run queues it for the archive or
  sets its keys' expiry; one that reopens it removes the expiry. Those parts derive the fleet's
  settings and archive keys from KEYS[1] and ARGV[5] (same hash tag, so the same Cluster slot).
]]
-- @include retention-functions
-- @include fair-priority
-- @include bullmq-add-prioritized-job
local creating = ARGV[6] == 'create'
if creating then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
else
  local version = redis.call('HGET', KEYS[1], 'version')
  if version == false then return -1 end
  if tonumber(version) ~= tonumber(ARGV[1]) then return 0 end
end
-- The phase jobs' options are decoded before anything is written: a malformed argument fails the
-- script while it has written nothing.
local jobs = {}
for i = 1, tonumber(ARGV[15]) do
  local at = 16 + 18 * (i - 1)
  jobs[i] = { at = at, opts = cjson.decode(ARGV[at + 17]), timestamp = tonumber(ARGV[at + 15]) }
  if jobs[i].timestamp == nil then
    error('phase job ' .. ARGV[at + 2] .. ': timestamp "' .. ARGV[at + 15] .. '" is not a number')
  end
end
local writes = 16 + 18 * tonumber(ARGV[15])
if creating then
  local created = writes + 2 * tonumber(ARGV[9])
  if #ARGV ~= created + 2 then
    error('creating run ' .. ARGV[5] .. ': ' .. #ARGV .. ' arguments, expected ' .. (created + 2) .. ' (the meta, the creation time and the runs index after the context writes)')
  end
  redis.call('HSET', KEYS[1], 'meta', ARGV[created], 'version', ARGV[2], 'state', ARGV[3])
  redis.call('ZADD', ARGV[created + 2], ARGV[created + 1], ARGV[5])
  redis.call('SADD', KEYS[4], ARGV[5])
else
  redis.call('HSET', KEYS[1], 'version', ARGV[2], 'state', ARGV[3])
end
if ARGV[6] == '1' then
  redis.call('HDEL', KEYS[1], 'result')
  redis.call('SADD', KEYS[4], ARGV[5])
  -- a reopened run stays until it finishes again
  -- @include retention-on-reopened
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'result', ARGV[4])
  redis.call('SREM', KEYS[4], ARGV[5])
end
local carried = cjson.decode(ARGV[14])
for _, v in ipairs(carried) do
  redis.call('HDEL', KEYS[6], v)
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[2], ARGV[7])
  redis.call('ZADD', KEYS[7], 'NX', ARGV[8], ARGV[5])
end
if #carried > 0 then
  -- the run leaves the outboxes set when nothing is left; aged from this commit when only its own entry is
  local left = redis.call('HLEN', KEYS[6])
  if left == 0 then
    redis.call('ZREM', KEYS[7], ARGV[5])
  elseif left == 1 and ARGV[7] ~= '' then
    redis.call('ZADD', KEYS[7], ARGV[8], ARGV[5])
  end
end
for k = 0, tonumber(ARGV[9]) - 1 do
  redis.call('HSET', KEYS[2], ARGV[writes + 2 * k], ARGV[writes + 2 * k + 1])
end
for _, e in ipairs(cjson.decode(ARGV[10])) do
  redis.call('XADD', KEYS[3], '*', 'type', e[1], 'data', e[2])
end
for _, d in ipairs(cjson.decode(ARGV[11])) do
  redis.call('ZADD', KEYS[5], d[1], d[2])
end
for _, member in ipairs(cjson.decode(ARGV[12])) do
  redis.call('ZREM', KEYS[5], member)
end
for _, f in ipairs(cjson.decode(ARGV[13])) do
  redis.call('ZREM', f[1], f[2])
end
-- After the ended jobs left their fairness counts, so a job that ends and the one that follows it in
-- the same commit are not counted together.
for _, job in ipairs(jobs) do
  local at = job.at
  job.opts['priority'] = fairPriority(ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4])
  local keys = {}
  for k = 1, 9 do keys[k] = ARGV[at + 4 + k] end
  -- BullMQ's packed arguments: key prefix, job id, name, timestamp; no parent, repeat or
  -- deduplication key (the nils that follow them in Job#addJob's array)
  local packed = cmsgpack.pack({ ARGV[at + 1], ARGV[at + 2], ARGV[at + 14], job.timestamp })
  bullmqAddPrioritizedJob(keys, { packed, ARGV[at + 16], cmsgpack.pack(job.opts) })
end
if ARGV[4] ~= '' then
  -- archive or expiry of the finished run: last, once every key of the run is written (a key this
  -- commit creates, such as the context of a run's first output, must get the expiry too)
  -- @include retention-on-finished
end
return 1
