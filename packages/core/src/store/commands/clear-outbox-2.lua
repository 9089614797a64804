--[[
  clear-outbox: drop the outbox entries a reconciler carried out.

  KEYS[1] run outbox hash     <p>:run:<id>:outbox
  KEYS[2] outboxes zset       <p>:outbox

  ARGV[1] run id
  ARGV[2] now, epoch ms (the age of what is left, if anything)
  ARGV[3..] the versions carried out

  Returns how many entries are left: with none the run leaves the outboxes set; with some it stays,
  aged from now (they were written after the reconciler read the outbox).
]]
for i = 3, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
-- @include outbox-left
return left
