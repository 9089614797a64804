/**
 * `render_template`: text built from the run's context. Like every tool parameter, `template` is
 * rendered by the tools pool before the tool runs (`{{requirements}}`, `{{var}}`, `{{phase.field}}`),
 * so the tool returns it: `{text}`, plus `value` (the parsed text) with `format: json`.
 */
import { FleetError } from '@agentfleet/core';
import { z } from 'zod';
import type { FleetTool } from './tool.js';

const RenderTemplateParams = z.strictObject({
  template: z.string(),
  /** `json`: also parse the rendered text as JSON into `value`. */
  format: z.enum(['text', 'json']).default('text'),
});
export type RenderTemplateParams = z.infer<typeof RenderTemplateParams>;

export const renderTemplateTool: FleetTool<RenderTemplateParams> = {
  name: 'render_template',
  description: "Render a template over the run's context; the text (and, with format json, the parsed value).",
  parameters: RenderTemplateParams,
  handler(p) {
    if (p.format === 'text') return { text: p.template };
    try {
      return { text: p.template, value: JSON.parse(p.template) as unknown };
    } catch (err) {
      throw new FleetError('TOOL_INPUT_INVALID', `render_template: the rendered template is not JSON (format: json): ${(err as Error).message}`);
    }
  },
};
