import { RoleFileSchema } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { customRole } from './custom.js';

const file = {
  name: 'triage',
  description: 'Triages a request.',
  instructions: 'Rate the severity.',
  output_schema: { type: 'object', properties: { severity: { enum: ['low', 'high'] } }, required: ['severity'] },
};

describe('role files: strict, effort and thinking', () => {
  it('carries strict, effort and thinking from the role file to the role', () => {
    const def = RoleFileSchema.parse({ ...file, strict: false, effort: 'high', thinking: true });
    expect(customRole(def)).toMatchObject({ name: 'triage', strict: false, effort: 'high', thinking: true });
    const plain = customRole(RoleFileSchema.parse(file));
    expect(plain).not.toHaveProperty('strict');
    expect(plain).not.toHaveProperty('effort');
  });

  it('refuses an unknown effort, naming the choices', () => {
    const parsed = RoleFileSchema.safeParse({ ...file, effort: 'extreme' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toBe('effort must be one of low, medium, high, xhigh, max');
  });
});
