export { runCommand, type RunCommandOptions } from './run.js';
export { ensureRedis, findOnPath, type RedisHandle } from './local-redis.js';
export { progressLine } from './progress.js';
export { createTestFleet, type TestFleet, type TestFleetOptions, type TestRun, type TestRunOptions } from './testing/test-fleet.js';
export { TestClock } from '@agentfleet/core';
export { ScriptedLlmClient, checkReplies, parseReplies, type Replies, type ScriptedReply } from './testing/replies.js';
export { compareRun, formatMismatches, parseExpectations, type Expectations, type Mismatch } from './testing/expect.js';
export { RecordingLlmClient, ReplayLlmClient, readCassette, diffRequests, type CassetteEntry, type ReplayMismatch } from './testing/cassette.js';
