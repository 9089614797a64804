--[[
  claim-due: take members of a sorted set scored by when they come due, leasing each.

  KEYS[1] the sorted set (deadlines, or runs with a pending outbox)

  ARGV[1] now, epoch ms: members scored at most this are due
  ARGV[2] lease end, epoch ms: each member taken is moved there (should its taker die, it comes due again)
  ARGV[3] at most this many

  Returns the members taken.
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
