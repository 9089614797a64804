import { z } from 'zod';
import type { Code } from './coder.js';
import type { Design } from './designer.js';
import { OFFLINE_LABEL, upstreamOf, type AgentRole } from './role.js';

export const ReviewSchema = z.object({
  verdict: z.enum(['approve', 'changes_requested']),
  findings: z.array(
    z.object({
      severity: z.enum(['info', 'minor', 'major', 'critical']),
      file: z.string().describe('Path of the file concerned, or "" for the whole change'),
      message: z.string().min(1),
    }),
  ),
  summary: z.string().min(1),
});
export type Review = z.infer<typeof ReviewSchema>;

export const reviewer: AgentRole<Review> = {
  name: 'reviewer',
  description: 'Reviews the implementation against the plan and the design: verdict, findings with severity and file, summary.',
  instructions: [
    'You are the code reviewer of a delivery team.',
    "Check the coder's files against the plan's acceptance criteria and the design: missing endpoints, wrong data model, bugs, security problems.",
    'Answer approve only when nothing major or critical is left; otherwise changes_requested with findings the coder can act on.',
  ].join('\n'),
  outputSchema: ReviewSchema,
  offline(input) {
    const code = upstreamOf(input, 'coder') as Code | undefined;
    const design = upstreamOf(input, 'designer') as Design | undefined;
    const text = (code?.files ?? []).map((f) => f.content).join('\n');
    const missing = (design?.api_endpoints ?? []).filter((e) => !text.includes(JSON.stringify(e.path)));
    const findings = missing.map((e) => ({ severity: 'major' as const, file: 'src/server.mjs', message: `endpoint ${e.method} ${e.path} from the design is not implemented` }));
    if (!code) findings.push({ severity: 'major', file: '', message: 'no implementation was provided to review' });
    return {
      verdict: findings.length === 0 ? 'approve' : 'changes_requested',
      findings,
      summary: `${OFFLINE_LABEL} Checked ${code?.files.length ?? 0} file(s) against ${design?.api_endpoints.length ?? 0} designed endpoint(s): ${findings.length} finding(s).`,
    };
  },
};
