import { describe, expect, it } from 'vitest';
import { z } from 'zod';

import { strictJsonSchema } from './strict-schema.js';

interface JsonSchema {
  additionalProperties?: unknown;
  properties: Record<string, JsonSchema>;
  items: JsonSchema;
  required?: string[];
  minItems?: number;
  minLength?: number;
}

function fromZod(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output' }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

describe('strictJsonSchema', () => {
  it('closes every object and removes what a grammar cannot express, keeping the structure', () => {
    const schema = fromZod(
      z.object({
        files: z.array(z.object({ path: z.string().min(1).regex(/^[a-z]/), size: z.number().int().min(0).max(10) })).min(1).max(50),
        tags: z.array(z.string()).min(2),
        kind: z.union([z.literal('a'), z.literal('b')]),
        note: z.string().optional(),
      }),
    );
    const result = strictJsonSchema(schema, 'anthropic');
    expect(result.compatible).toBe(true);
    const out = result.schema as unknown as JsonSchema;
    expect(out.additionalProperties).toBe(false);
    const file = out.properties['files']?.items;
    expect(file?.additionalProperties).toBe(false);
    expect(file?.properties['path']).toEqual({ type: 'string' });
    expect(file?.properties['size']).not.toHaveProperty('minimum');
    expect(file?.properties['size']).not.toHaveProperty('maximum');
    expect(out.properties['files']?.minItems).toBe(1);
    expect(out.properties['files']).not.toHaveProperty('maxItems');
    expect(out.properties['tags']).not.toHaveProperty('minItems');
    expect(out.required).toEqual(['files', 'tags', 'kind']);
    expect(result.removed).toEqual(expect.arrayContaining(['/properties/files/items/properties/path/minLength', '/properties/files/items/properties/path/pattern', '/properties/files/maxItems', '/properties/tags/minItems']));
    // The input is left as it was, and the same object gets the same answer.
    expect((schema as unknown as JsonSchema).properties['files']?.items.properties['path']?.minLength).toBe(1);
    expect(strictJsonSchema(schema, 'anthropic')).toBe(result);
  });

  it('reports a map with free keys as not compatible', () => {
    const result = strictJsonSchema(fromZod(z.object({ vars: z.record(z.string(), z.string()) })), 'anthropic');
    expect(result.compatible).toBe(false);
    expect(result.reason).toMatch(/\/properties\/vars: a map with free keys/);
  });

  it('for OpenAI, reports an optional property as not compatible (strict requires every property)', () => {
    const schema = fromZod(z.object({ a: z.string(), b: z.string().optional() }));
    expect(strictJsonSchema(schema, 'anthropic').compatible).toBe(true);
    const openai = strictJsonSchema(schema, 'openai');
    expect(openai.compatible).toBe(false);
    expect(openai.reason).toContain('"b" is optional');
    expect(strictJsonSchema(fromZod(z.object({ a: z.string() })), 'openai').compatible).toBe(true);
  });

  it('turns oneOf into anyOf and drops unknown formats', () => {
    const result = strictJsonSchema(
      { type: 'object', properties: { v: { oneOf: [{ type: 'string', format: 'email' }, { type: 'string', format: 'semver' }] } }, required: ['v'] },
      'anthropic',
    );
    expect(result.schema).toEqual({
      type: 'object',
      properties: { v: { anyOf: [{ type: 'string', format: 'email' }, { type: 'string' }] } },
      required: ['v'],
      additionalProperties: false,
    });
  });
});
