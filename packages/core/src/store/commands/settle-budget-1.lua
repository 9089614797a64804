--[[
  settle-budget: a model call ended: release what it held and count what it billed.

  KEYS[1] the run's budget ledger (see reserve-budget-1.lua)

  ARGV[1] ticket id ('' for a call that held nothing)
  ARGV[2] USD the call billed
  ARGV[3] tokens the call billed
  ARGV[4..] the scopes the call counts against (`run`, `phase:<name>`)

  A ticket already released (it expired while its holder was slow) releases nothing again; what the
  call billed is counted either way.

  Returns, per scope in ARGV order, {spent USD, spent tokens} after the call, as strings.
]]
local key = KEYS[1]
local held = ARGV[1] ~= '' and redis.call('HGET', key, 'ticket:' .. ARGV[1]) or false
local usd, tokens = '0', '0'
if held then
  usd, tokens = string.match(held, '^(%S+) (%S+)')
  redis.call('HDEL', key, 'ticket:' .. ARGV[1])
end
local out = {}
for i = 4, #ARGV do
  local scope = ARGV[i]
  if held then
    redis.call('HINCRBYFLOAT', key, scope .. ':reserved_usd', '-' .. usd)
    redis.call('HINCRBYFLOAT', key, scope .. ':reserved_tokens', '-' .. tokens)
  end
  out[#out + 1] = redis.call('HINCRBYFLOAT', key, scope .. ':spent_usd', ARGV[2])
  out[#out + 1] = redis.call('HINCRBYFLOAT', key, scope .. ':spent_tokens', ARGV[3])
end
return out
