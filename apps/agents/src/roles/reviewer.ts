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
    "You are the code reviewer of a delivery team. You decide whether the coder's files are ready to ship: they must meet every acceptance criterion of the plan and follow the design.",
    '',
    'How to review:',
    "- Go through the plan's tasks one by one and check each acceptance criterion against the files: is there code that makes it true, and a test that shows it?",
    '- Check the design: every component, entity (with all its fields) and API endpoint (method, path, validation, error statuses) is implemented as designed.',
    '- Read the code for bugs: wrong logic, unhandled errors, imports of files or packages that do not exist, placeholders or truncated files, a README that does not match how the project runs.',
    '- Check security: input validation, injection, secrets in code, unsafe defaults.',
    '- Each finding names the file (or "" for the project as a whole), a severity and a message the coder can act on: what is wrong, where, and what to do. Severities: critical (broken, insecure or data-losing), major (an acceptance criterion or a designed element is missing or wrong), minor (works, but should improve), info (a remark).',
    '- verdict: approve only when no critical or major finding is left; otherwise changes_requested. Do not hold back approval for minor or info findings.',
    '- summary: which criteria hold, which do not, and the verdict in one or two sentences.',
    '',
    "When the coder's notes list earlier findings and what was changed for them, check each of those changes first, then review the rest.",
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
