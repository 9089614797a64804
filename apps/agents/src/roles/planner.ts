import { z } from 'zod';
import { clauses, OFFLINE_LABEL, type AgentRole } from './role.js';

export const PlanSchema = z.object({
  summary: z.string().min(1).describe('What will be built, in two or three sentences'),
  tasks: z
    .array(
      z.object({
        id: z.string().min(1).describe('Short stable id such as T1'),
        title: z.string().min(1),
        description: z.string(),
        acceptance_criteria: z.array(z.string().min(1)).min(1).describe('Checkable statements that prove the task is done'),
      }),
    )
    .min(1),
  risks: z.array(z.string()),
  open_questions: z.array(z.string()).describe('Questions for the requester; empty when nothing is unclear'),
});
export type Plan = z.infer<typeof PlanSchema>;

export const planner: AgentRole<Plan> = {
  name: 'planner',
  description: 'Turns requirements into a plan: tasks with acceptance criteria, risks and open questions.',
  instructions: [
    'You are the planner of a software delivery team; the designer, coder and reviewer work to your plan.',
    'Cover every requirement; add only what the software needs to run (setup, tests, README).',
    'Write 3 to 8 ordered tasks (T1, T2, ...), each with 2 to 5 acceptance criteria a reviewer can check: observable behaviour with concrete inputs and outputs, never intentions.',
    'Include a task for automated tests and a README. List real risks with how the plan limits them; ask open questions only when the answer would change the design, else state your assumption in the task.',
  ].join('\n'),
  outputSchema: PlanSchema,
  /**
   * In an interactive run (variable `interactive` = `true`, set by `fleet run --interactive`), open
   * questions put the run in `waiting` for an `answers` event; planning then runs again with them.
   */
  stepAction(output, input) {
    const questions = (output as Plan).open_questions;
    if (input.variables.interactive !== 'true' || questions.length === 0 || input.feedback?.event) return undefined;
    return { type: 'wait', event: 'answers', prompt: questions };
  },
  offline(input) {
    const features = clauses(input.requirements);
    return {
      summary: `${OFFLINE_LABEL} Deliver: ${input.requirements.trim().slice(0, 300)}`,
      tasks: features.map((feature, i) => ({
        id: `T${i + 1}`,
        title: feature.charAt(0).toUpperCase() + feature.slice(1),
        description: `Implement "${feature}" as stated in the requirements.`,
        acceptance_criteria: [`"${feature}" works end to end`, `"${feature}" is covered by an automated test`],
      })),
      risks: ['Requirements are interpreted literally by the offline model; review them with a real model.'],
      // Asked only until answered, so an interactive run shows the question-and-answer loop offline too.
      open_questions: input.variables.interactive === 'true' && !input.feedback?.event ? ['Who are the users, and how do they sign in?'] : [],
    };
  },
};
