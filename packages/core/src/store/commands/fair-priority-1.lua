--[[
  fair-priority: the BullMQ priority of a phase job added outside a commit (a reconciler carrying out
  an outbox entry that names the job): see includes/fair-priority.lua for the rule.

  KEYS[1] the fairness group's jobs in this queue   <p>:fair:<queue>:<key>   (zset: job id -> its priority)

  ARGV[1] the queue's job key prefix `<p>:<queue>:` (BullMQ's job hash is that plus the job id)
  ARGV[2] job id
  ARGV[3] the band's first priority (from the run's priority 1..10)
  ARGV[4] the band's width (priorities in one band)

  Returns the priority.
]]
-- @include fair-priority
return fairPriority(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
