/**
 * The summarizer: condenses what earlier phases produced (a fetched page, several reviews) into a
 * summary, key points and a verdict when there is one to give. Used by the `fetch-and-summarize`
 * workflow (summarise a fetched document) and `design-review` (merge two reviews).
 */
import { z } from 'zod';
import { OFFLINE_LABEL, type AgentRole, type RoleInput } from './role.js';

export const SummarySchema = z.object({
  summary: z.string().min(1).describe('The gist, in a few sentences of plain prose'),
  key_points: z.array(z.string().min(1)).describe('The points a reader must not miss, most important first'),
  verdict: z.enum(['approve', 'changes_requested', 'none']).describe('For merged reviews: approve only if every review approves; none otherwise'),
});
export type Summary = z.infer<typeof SummarySchema>;

/** Plain text of an upstream output: a fetched body, a summary field, else compact JSON. */
function textOf(output: unknown): string {
  if (typeof output === 'string') return output;
  if (output && typeof output === 'object') {
    const o = output as Record<string, unknown>;
    for (const key of ['body', 'text', 'summary', 'architecture']) if (typeof o[key] === 'string' && o[key]) return o[key];
  }
  return JSON.stringify(output ?? null);
}

export const summarizer: AgentRole<Summary> = {
  name: 'summarizer',
  description: 'Summarises the outputs of earlier phases (documents, reviews): summary, key points, merged verdict.',
  instructions: [
    'You are the summarizer of an agent team.',
    'Read the outputs of the earlier phases and write a faithful summary: no facts that are not in them.',
    'List the key points a reader must not miss. When the inputs are reviews, merge them: approve only if every review approves, and keep every major or critical finding as a key point.',
  ].join('\n'),
  outputSchema: SummarySchema,
  offline(input: RoleInput) {
    const verdicts = input.upstream.map((u) => (u.output as { verdict?: unknown } | undefined)?.verdict).filter((v): v is string => typeof v === 'string');
    const verdict = verdicts.length === 0 ? 'none' : verdicts.every((v) => v === 'approve') ? 'approve' : 'changes_requested';
    const points = input.upstream.flatMap((u) => {
      const findings = (u.output as { findings?: Array<{ severity?: string; message?: string }> } | undefined)?.findings;
      if (Array.isArray(findings) && findings.length > 0) return findings.map((f) => `${u.phase}: ${f.severity ?? 'info'}: ${f.message ?? ''}`);
      const first = textOf(u.output).replace(/\s+/g, ' ').trim().slice(0, 160);
      return first ? [`${u.phase}: ${first}`] : [];
    });
    return {
      summary: `${OFFLINE_LABEL} Summary of ${input.upstream.length} input(s) (${input.upstream.map((u) => u.phase).join(', ') || 'none'}) for: ${input.requirements.trim().slice(0, 200)}`,
      key_points: points.slice(0, 20),
      verdict,
    };
  },
};
