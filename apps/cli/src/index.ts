export { runCommand, type RunCommandOptions } from './run.js';
export { ensureRedis, findOnPath, type RedisHandle } from './local-redis.js';
export { progressLine } from './progress.js';
