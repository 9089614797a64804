import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { FleetError } from './errors.js';

describe('structured-output settings', () => {
  it('defaults: strict on, no per-role effort or thinking', () => {
    const config = loadConfig({});
    expect(config.strict).toBe(true);
    expect(config.roleEffort).toEqual({});
    expect(config.roleThinking).toEqual([]);
  });

  it('reads FLEET_ROLE_EFFORT, FLEET_ROLE_THINKING and FLEET_STRICT', () => {
    const config = loadConfig({ FLEET_ROLE_EFFORT: 'planner=high, coder=medium', FLEET_ROLE_THINKING: 'planner,reviewer', FLEET_STRICT: 'false' });
    expect(config.roleEffort).toEqual({ planner: 'high', coder: 'medium' });
    expect(config.roleThinking).toEqual(['planner', 'reviewer']);
    expect(config.strict).toBe(false);
  });

  it('refuses a bad effort naming the setting and the choices', () => {
    let err: unknown;
    try {
      loadConfig({ FLEET_ROLE_EFFORT: 'planner=extreme' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FleetError);
    expect((err as FleetError).message).toContain('FLEET_ROLE_EFFORT: "planner=extreme" is not role=effort with effort one of low, medium, high, xhigh, max');
    expect(() => loadConfig({ FLEET_STRICT: 'yes' })).toThrow(/FLEET_STRICT must be true or false/);
  });
});
