/**
 * Artifacts of a run on disk: `result.json`, `plan.md`, `design.md`, the generated source files
 * under `files/`, `review.md` (every review phase's, each under its phase name when there are
 * several) and `summary.md` (a summarizer's: a merged verdict), rendered from the run result's
 * phase outputs by role.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { RunResult } from '@agentfleet/core';
import { CodeSchema, DesignSchema, PlanSchema, ReviewSchema, SummarySchema, type Code, type Design, type Plan, type Review, type Summary } from './roles/index.js';

/** The output of the last completed phase served by `role`, parsed with that role's schema. */
function outputOf<T>(result: RunResult, role: string, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }): T | undefined {
  const phases = result.phases.filter((p) => p.agent === role && p.status === 'completed');
  const last = phases.at(-1);
  if (!last) return undefined;
  const parsed = schema.safeParse(result.results[last.name]);
  return parsed.success ? parsed.data : undefined;
}

function banner(result: RunResult): string {
  return result.provider === 'offline'
    ? '> Produced by the built-in **offline model** (no API key was set): deterministic placeholders, not LLM output.\n\n'
    : '';
}

export function planMarkdown(plan: Plan, result: RunResult): string {
  const tasks = plan.tasks
    .map((t) => `### ${t.id}. ${t.title}\n\n${t.description}\n\nAcceptance criteria:\n${t.acceptance_criteria.map((c) => `- [ ] ${c}`).join('\n')}`)
    .join('\n\n');
  const list = (items: string[]) => (items.length ? items.map((i) => `- ${i}`).join('\n') : '- none');
  return `# Plan\n\n${banner(result)}${plan.summary}\n\n## Tasks\n\n${tasks}\n\n## Risks\n\n${list(plan.risks)}\n\n## Open questions\n\n${list(plan.open_questions)}\n`;
}

export function designMarkdown(design: Design, result: RunResult): string {
  const components = design.components.map((c) => `- **${c.name}**: ${c.responsibility}${c.interfaces.length ? `\n  - ${c.interfaces.map((i) => `\`${i}\``).join('\n  - ')}` : ''}`).join('\n');
  const model = design.data_model.map((e) => `### ${e.entity}\n\n| field | type |\n| --- | --- |\n${e.fields.map((f) => `| ${f.name} | ${f.type} |`).join('\n')}`).join('\n\n');
  const endpoints = design.api_endpoints.map((e) => `| ${e.method} | \`${e.path}\` | ${e.description} |`).join('\n');
  const decisions = design.decisions.map((d) => `- **${d.decision}**: ${d.rationale}`).join('\n');
  return `# Design\n\n${banner(result)}## Architecture\n\n${design.architecture}\n\n## Components\n\n${components}\n\n## Data model\n\n${model || 'none'}\n\n## API endpoints\n\n| method | path | description |\n| --- | --- | --- |\n${endpoints}\n\n## Decisions\n\n${decisions || '- none'}\n`;
}

export function reviewMarkdown(review: Review, result: RunResult): string {
  return `# Review\n\n${banner(result)}${reviewBody(review, '##')}`;
}

/** Verdict, summary and findings of one review; `level` is the heading level of "Findings". */
function reviewBody(review: Review, level: string): string {
  const findings = review.findings.map((f) => `- **${f.severity}**${f.file ? ` \`${f.file}\`` : ''}: ${f.message}`).join('\n');
  return `**Verdict: ${review.verdict}**\n\n${review.summary}\n\n${level} Findings\n\n${findings || '- none'}\n`;
}

/** Several reviews of one run (design-review's security and operability reviews), one section per phase. */
export function reviewsMarkdown(reviews: ReadonlyArray<{ phase: string; review: Review }>, result: RunResult): string {
  return `# Reviews\n\n${banner(result)}${reviews.map(({ phase, review }) => `## ${phase}\n\n${reviewBody(review, '###')}`).join('\n')}`;
}

/** A summarizer's output (a merge of reviews, a summary of a document). */
export function summaryMarkdown(summary: Summary, phase: string, result: RunResult): string {
  const points = summary.key_points.map((p) => `- ${p}`).join('\n');
  const verdict = summary.verdict === 'none' ? '' : `**Verdict: ${summary.verdict}**\n\n`;
  return `# Summary (${phase})\n\n${banner(result)}${verdict}${summary.summary}\n\n## Key points\n\n${points || '- none'}\n`;
}

/** The outputs of every completed phase served by `role`, in the workflow's order, parsed with the role's schema. */
function outputsOf<T>(result: RunResult, role: string, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }): Array<{ phase: string; output: T }> {
  return result.phases.flatMap((p) => {
    if (p.agent !== role || p.status !== 'completed') return [];
    const parsed = schema.safeParse(result.results[p.name]);
    return parsed.success ? [{ phase: p.name, output: parsed.data }] : [];
  });
}

/** What {@link writeArtifacts} writes, from the workflow's `output` section. */
export interface ArtifactOptions {
  /**
   * `structured`: the Markdown documents, the generated files and `result.json`; `json`: the
   * generated files and `result.json`; `markdown`: the documents and the generated files.
   * @defaultValue `structured`
   */
  format?: 'structured' | 'json' | 'markdown';
}

/**
 * Write a run's artifacts into `dir` (created if missing), as `options.format` says.
 *
 * @returns the paths written, relative to `dir`.
 * @throws Error when a generated file's path would leave `dir/files` (it is skipped with a note
 *   instead: the role schema already refuses such paths, this is the last guard).
 */
export async function writeArtifacts(result: RunResult, dir: string, options: ArtifactOptions = {}): Promise<string[]> {
  const format = options.format ?? 'structured';
  const documents = format !== 'json';
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const written: string[] = [];
  const put = async (rel: string, content: string) => {
    const path = join(root, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    written.push(rel);
  };
  const plan = outputOf<Plan>(result, 'planner', PlanSchema);
  if (plan && documents) await put('plan.md', planMarkdown(plan, result));
  const design = outputOf<Design>(result, 'designer', DesignSchema);
  if (design && documents) await put('design.md', designMarkdown(design, result));
  const code = outputOf<Code>(result, 'coder', CodeSchema);
  if (code) {
    const filesRoot = join(root, 'files') + sep;
    for (const file of code.files) {
      const target = resolve(filesRoot, file.path);
      if (!target.startsWith(filesRoot)) continue;
      await put(join('files', file.path), file.content);
    }
  }
  const reviews = outputsOf<Review>(result, 'reviewer', ReviewSchema);
  const [onlyReview] = reviews;
  if (onlyReview && documents) {
    await put('review.md', reviews.length === 1 ? reviewMarkdown(onlyReview.output, result) : reviewsMarkdown(reviews.map((r) => ({ phase: r.phase, review: r.output })), result));
  }
  const summary = outputsOf<Summary>(result, 'summarizer', SummarySchema).at(-1);
  if (summary && documents) await put('summary.md', summaryMarkdown(summary.output, summary.phase, result));
  if (format !== 'markdown') await put('result.json', JSON.stringify({ ...result, artifacts_dir: root }, null, 2) + '\n');
  return written;
}
