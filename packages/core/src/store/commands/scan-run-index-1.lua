--[[
  scan-run-index: walk the run index newest first from a position and return the runs that may
  match a list filter. Label filters are exact; status, workflow and words are a pre-filter on the
  raw JSON of the run record (a run that matches always passes; the caller checks every run returned
  exactly, so one that only looks like a match is dropped there).

  KEYS[1] the run index <p>:runs (sorted set: run id scored by creation time, epoch ms)

  ARGV[1] the fleet prefix <p> (run keys share its hash tag)
  ARGV[2] start after this run id ('' = from the newest run within the bounds)
  ARGV[3] that run's score (used when the run left the index meanwhile)
  ARGV[4] highest score, or '' for none
  ARGV[5] '1' when ARGV[4] is excluded (created before), '0' when included
  ARGV[6] lowest score (included), or '' for none
  ARGV[7] look at this many index entries at most
  ARGV[8] return this many runs at most
  ARGV[9] the filter, JSON: {"labels": {"user_id": "…", …}, "status": "…", "workflow": "…",
          "words": ["…"] (lower case, ASCII, in the requirements), "id_prefix": "…" (lower case)}
          (every field optional; with "id_prefix", a run whose id starts with it needs no words)

  Returns {looked, exhausted (1 when the index has no entry left within the bounds), last id,
  last score, run id…}: the last entry looked at is where the next call starts.
]]
local prefix = ARGV[1]
local look = tonumber(ARGV[7])
local want = tonumber(ARGV[8])
local filter = cjson.decode(ARGV[9])
local maxScore = ARGV[4] ~= '' and tonumber(ARGV[4]) or nil
local maxOpen = ARGV[5] == '1'
local minScore = ARGV[6] ~= '' and tonumber(ARGV[6]) or nil

local labelFields, labelValues = {}, {}
if type(filter.labels) == 'table' then
  for field, value in pairs(filter.labels) do
    labelFields[#labelFields + 1] = field
    labelValues[#labelValues + 1] = value
  end
end
local words = type(filter.words) == 'table' and filter.words or {}
local idPrefix = type(filter.id_prefix) == 'string' and filter.id_prefix or nil
local statusNeedle = type(filter.status) == 'string' and ('"status":' .. cjson.encode(filter.status)) or nil
local workflowNeedle = type(filter.workflow) == 'string' and ('"name":' .. cjson.encode(filter.workflow)) or nil

-- The entries to look at: after the start run by its rank, or from the top of the bounds.
local entries
local skipAtOrAbove = nil
if ARGV[2] ~= '' then
  local rank = redis.call('ZREVRANK', KEYS[1], ARGV[2])
  if rank then
    entries = redis.call('ZREVRANGE', KEYS[1], rank + 1, rank + look, 'WITHSCORES')
  else
    -- The start run is gone: from its score down, past the runs of that same score that came before it.
    entries = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], minScore and ARGV[6] or '-inf', 'WITHSCORES', 'LIMIT', 0, look)
    skipAtOrAbove = ARGV[2]
  end
else
  local top = '+inf'
  if maxScore then top = (maxOpen and '(' or '') .. ARGV[4] end
  entries = redis.call('ZREVRANGEBYSCORE', KEYS[1], top, minScore and ARGV[6] or '-inf', 'WITHSCORES', 'LIMIT', 0, look)
end

local out = {}
local looked = 0
local lastId, lastScore = ARGV[2], ARGV[3]
local count = #entries / 2
-- Fewer entries than asked for: the index ends within them (unless the loop stops first).
local exhausted = count < look and 1 or 0
for i = 1, #entries, 2 do
  local id, score = entries[i], tonumber(entries[i + 1])
  if minScore and score < minScore then
    exhausted = 1
    break
  end
  looked = looked + 1
  lastId, lastScore = id, entries[i + 1]
  local ok = true
  if skipAtOrAbove and score == tonumber(ARGV[3]) and id >= skipAtOrAbove then ok = false end
  if ok and maxScore and (score > maxScore or (maxOpen and score == maxScore)) then ok = false end
  if ok and #labelFields > 0 then
    local got = redis.call('HMGET', prefix .. ':run:' .. id .. ':labels', unpack(labelFields))
    for j = 1, #labelFields do
      if got[j] ~= labelValues[j] then
        ok = false
        break
      end
    end
  end
  if ok and (statusNeedle or workflowNeedle or #words > 0) then
    local record = redis.call('HMGET', prefix .. ':run:' .. id, 'state', 'meta')
    local state, meta = record[1], record[2]
    if not state or not meta then
      ok = false
    else
      if statusNeedle and not string.find(state, statusNeedle, 1, true) then ok = false end
      if ok and workflowNeedle and not string.find(meta, workflowNeedle, 1, true) then ok = false end
      if ok and #words > 0 and not (idPrefix and string.sub(id, 1, #idPrefix) == idPrefix) then
        local text = string.lower(meta)
        for _, w in ipairs(words) do
          if not string.find(text, w, 1, true) then
            ok = false
            break
          end
        end
      end
    end
  end
  if ok then
    out[#out + 1] = id
    if #out >= want then
      -- Entries after this one are still to be looked at.
      if looked < count then exhausted = 0 end
      break
    end
  end
end
local reply = { looked, exhausted, lastId, lastScore }
for _, id in ipairs(out) do reply[#reply + 1] = id end
return reply
