/**
 * The test kit's clock is the core's {@link TestClock} (real time plus an offset the test advances,
 * with timers that fire when it is advanced past them), so the manager and the worker hosts of a test
 * fleet read one clock.
 */
export { TestClock } from '@agentfleet/core';
