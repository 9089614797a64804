/**
 * A user tool for tests, loaded the way users load theirs (FLEET_TOOL_MODULES, TypeScript through
 * tsx): parameters as a JSON Schema, output the upper-cased text.
 */
export default {
  name: 'upper',
  description: 'Upper-case a text.',
  parameters: {
    type: 'object',
    properties: { text: { type: 'string', minLength: 1 } },
    required: ['text'],
    additionalProperties: false,
  },
  handler(params: { text: string }): { text: string } {
    return { text: params.text.toUpperCase() };
  },
};
