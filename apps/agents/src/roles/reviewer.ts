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
    // A design review (design-review): no implementation was asked for, the design is what is
    // reviewed. A dependency that failed (a coder) still gets "no implementation" below.
    if (!code && design && input.upstreamErrors.length === 0) return offlineDesignReview(design, input.instructions);
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

/** Which angle a design review takes, from the phase's instructions (`design-review`'s two reviews). */
function reviewAngle(instructions: string | undefined): 'security' | 'operability' | 'general' {
  const text = (instructions ?? '').toLowerCase();
  if (text.includes('security')) return 'security';
  if (text.includes('operability')) return 'operability';
  return 'general';
}

/**
 * The offline model's review of a design when there is no implementation: deterministic checks of
 * the design for the angle the instructions ask (security, operability, or both), never of code.
 */
function offlineDesignReview(design: Design, instructions: string | undefined): Review {
  const angle = reviewAngle(instructions);
  const decided = design.decisions.map((d) => `${d.decision} ${d.rationale}`.toLowerCase()).join(' ');
  const findings: Review['findings'] = [];
  const writes = design.api_endpoints.filter((e) => e.method !== 'GET');
  if (angle !== 'operability') {
    if (!/auth/.test(decided) && design.api_endpoints.length > 0) {
      findings.push({ severity: 'major', file: '', message: `no decision on authentication or authorization: say who may call each of the ${design.api_endpoints.length} endpoint(s)` });
    }
    for (const e of writes) findings.push({ severity: 'minor', file: '', message: `${e.method} ${e.path}: the design does not say how its input is validated or which error status a bad request gets` });
  }
  if (angle !== 'security') {
    if (/in-memory|in memory/.test(`${design.architecture.toLowerCase()} ${decided}`)) {
      findings.push({ severity: 'major', file: '', message: 'the store is in memory: every entity is lost on a restart and the service cannot run more than one instance; choose a durable store' });
    }
    if (!/log|metric|trace|health/.test(decided)) findings.push({ severity: 'minor', file: '', message: 'no decision on observability: add a health endpoint, request logs and metrics' });
  }
  const blocking = findings.some((f) => f.severity === 'major' || f.severity === 'critical');
  return {
    verdict: blocking ? 'changes_requested' : 'approve',
    findings,
    summary: `${OFFLINE_LABEL} Reviewed the design${angle === 'general' ? '' : ` for ${angle}`} (there is no implementation yet): ${design.components.length} component(s), ${design.data_model.length} entit${design.data_model.length === 1 ? 'y' : 'ies'}, ${design.api_endpoints.length} endpoint(s), ${design.decisions.length} decision(s): ${findings.length} finding(s).`,
  };
}
