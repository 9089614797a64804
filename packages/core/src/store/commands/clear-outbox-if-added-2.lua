--[[
  clear-outbox-if-added: drop one outbox entry whose effects were phase jobs, only when every one of
  those jobs is stored. Sent right after the jobs' adds on the same connection (so Redis runs it after
  them, in their round trip): an add that failed leaves its job missing and the entry in the outbox,
  for a reconciler.

  KEYS[1] run outbox hash     <p>:run:<id>:outbox
  KEYS[2] outboxes zset       <p>:outbox

  ARGV[1] run id
  ARGV[2] now, epoch ms (the age of what is left, if anything)
  ARGV[3] the version carried out
  ARGV[4..] the BullMQ job hash keys of the jobs added (<p>:<queue>:<job id>; they carry the fleet's
            hash tag, as KEYS do, so the same Cluster slot)

  Returns how many entries are left, or -1 when a job is missing (nothing cleared).
]]
for i = 4, #ARGV do
  if redis.call('EXISTS', ARGV[i]) == 0 then return -1 end
end
redis.call('HDEL', KEYS[1], ARGV[3])
-- @include outbox-left
return left
