--[[
  reserve-budget: hold what one model call may cost against every budget it counts against, if it fits.

  KEYS[1] the run's budget ledger (hash `<p>:run:<id>:budget`):
          `<scope>:spent_usd`, `<scope>:spent_tokens`       what settled calls billed
          `<scope>:reserved_usd`, `<scope>:reserved_tokens` what calls in flight hold
          `ticket:<id>`                                     "<usd> <tokens> <expires_at_ms>" of one call in flight

  ARGV[1] now, epoch ms: tickets that expired by then (their holder died) are released first
  ARGV[2] ticket id
  ARGV[3] ticket expiry, epoch ms
  ARGV[4] the call's estimated input tokens
  ARGV[5] the call's estimated input cost, USD
  ARGV[6] the price of one output token, USD ('' when the model has no price: cost is not capped)
  ARGV[7] the output token cap the call asks for
  ARGV[8] the number of scopes N, then 5 arguments per scope:
          scope name (`run`, `phase:<name>`), max USD ('' none), USD committed to the run state,
          max tokens ('' none), tokens committed to the run state

  Spent is the larger of the ledger's and the run state's (a ledger written before a restart, or none).

  Returns {1, granted output tokens, held USD, held tokens} when the call fits with at least one output
  token, else {0, scope, limit name, max, spent, reserved}. Numbers are strings (Lua numbers would be
  truncated to integers).
]]
local key = KEYS[1]
local now = tonumber(ARGV[1])
local fmt = function(x) return string.format('%.17g', x) end

-- Release what died with its holder.
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local field = all[i]
  if string.sub(field, 1, 7) == 'ticket:' then
    local usd, tokens, expires, scopes = string.match(all[i + 1], '^(%S+) (%S+) (%S+) (%S*)$')
    if tonumber(expires) <= now then
      for scope in string.gmatch(scopes, '[^,]+') do
        redis.call('HINCRBYFLOAT', key, scope .. ':reserved_usd', '-' .. usd)
        redis.call('HINCRBYFLOAT', key, scope .. ':reserved_tokens', '-' .. tokens)
      end
      redis.call('HDEL', key, field)
    end
  end
end

local inputTokens = tonumber(ARGV[4])
local inputUsd = tonumber(ARGV[5])
local price = tonumber(ARGV[6])
local out = tonumber(ARGV[7])
local n = tonumber(ARGV[8])
local names = {}
local num = function(field) return tonumber(redis.call('HGET', key, field) or '0') end
for s = 0, n - 1 do
  local base = 9 + s * 5
  local scope = ARGV[base]
  names[#names + 1] = scope
  local maxUsd = tonumber(ARGV[base + 1])
  local maxTokens = tonumber(ARGV[base + 3])
  if maxUsd and price then
    local spent = math.max(num(scope .. ':spent_usd'), tonumber(ARGV[base + 2]))
    local reserved = math.max(0, num(scope .. ':reserved_usd'))
    local left = maxUsd - spent - reserved - inputUsd
    local affordable = out
    if price > 0 then affordable = math.floor(left / price) end
    if left <= 0 or affordable < 1 then return {0, scope, 'max_cost_usd', fmt(maxUsd), fmt(spent), fmt(reserved)} end
    out = math.min(out, affordable)
  end
  if maxTokens then
    local spent = math.max(num(scope .. ':spent_tokens'), tonumber(ARGV[base + 4]))
    local reserved = math.max(0, num(scope .. ':reserved_tokens'))
    local left = maxTokens - spent - reserved - inputTokens
    if left < 1 then return {0, scope, 'max_tokens', fmt(maxTokens), fmt(spent), fmt(reserved)} end
    out = math.min(out, math.floor(left))
  end
end

local usd = inputUsd + out * (price or 0)
local tokens = inputTokens + out
for _, scope in ipairs(names) do
  redis.call('HINCRBYFLOAT', key, scope .. ':reserved_usd', fmt(usd))
  redis.call('HINCRBYFLOAT', key, scope .. ':reserved_tokens', fmt(tokens))
end
redis.call('HSET', key, 'ticket:' .. ARGV[2], fmt(usd) .. ' ' .. fmt(tokens) .. ' ' .. ARGV[3] .. ' ' .. table.concat(names, ','))
return {1, fmt(out), fmt(usd), fmt(tokens)}
