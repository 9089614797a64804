import { z } from 'zod';
import type { Plan } from './planner.js';
import { clauses, OFFLINE_LABEL, slug, upstreamOf, type AgentRole } from './role.js';

export const DesignSchema = z.object({
  architecture: z.string().min(1).describe('The overall structure and why'),
  components: z
    .array(
      z.object({
        name: z.string().min(1),
        responsibility: z.string(),
        interfaces: z.array(z.string()).describe('Functions, endpoints or events the component exposes'),
      }),
    )
    .min(1),
  data_model: z.array(
    z.object({
      entity: z.string().min(1),
      fields: z.array(z.object({ name: z.string().min(1), type: z.string().min(1) })),
    }),
  ),
  api_endpoints: z.array(
    z.object({
      method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
      path: z.string().startsWith('/'),
      description: z.string(),
    }),
  ),
  decisions: z.array(z.object({ decision: z.string().min(1), rationale: z.string() })),
});
export type Design = z.infer<typeof DesignSchema>;

export const designer: AgentRole<Design> = {
  name: 'designer',
  description: 'Turns a plan into a design: architecture, components and interfaces, data model, API endpoints, decisions.',
  instructions: [
    'You are the software designer of a delivery team. The coder implements your design in one pass without asking you, and the reviewer checks the code against it: anything you leave out will be missing, anything vague will be guessed.',
    '',
    'How to design:',
    "- Start from the plan's tasks and acceptance criteria; every criterion must be met by something in the design.",
    '- architecture: the overall structure (processes, layers, storage, language and framework, how it is run) and why it fits the requirements. Prefer the simplest design that meets every criterion, with few dependencies.',
    '- components: every module or file group the coder will write, with its responsibility and its interfaces (function signatures with parameter and return types, endpoints, events, CLI commands).',
    '- data_model: every entity with every field and its type, including ids, timestamps and constraints (required, unique, max length) written in the type.',
    '- api_endpoints: every HTTP endpoint with its method, path (with parameters such as /todos/{id}) and a description of the request body, the response and the error statuses. Leave it empty only when the software has no HTTP interface.',
    '- decisions: each real choice (storage, validation, error format, authentication, testing approach) with its rationale and the alternative rejected.',
  ].join('\n'),
  outputSchema: DesignSchema,
  offline(input) {
    const plan = upstreamOf(input, 'planner') as Plan | undefined;
    const features = plan ? plan.tasks.map((t) => t.title) : clauses(input.requirements);
    const entities = features.slice(0, 4).map((f) => slug(f.split(' ').slice(-2).join(' ')));
    return {
      architecture: `${OFFLINE_LABEL} A single Node.js HTTP service with an in-memory store, one module per entity.`,
      components: [
        { name: 'http-server', responsibility: 'Routes HTTP requests to handlers', interfaces: ['listen(port)'] },
        { name: 'store', responsibility: 'Keeps entities in memory', interfaces: ['list(kind)', 'create(kind, item)', 'remove(kind, id)'] },
      ],
      data_model: entities.map((entity) => ({
        entity,
        fields: [
          { name: 'id', type: 'string' },
          { name: 'title', type: 'string' },
          { name: 'created_at', type: 'string (ISO 8601)' },
        ],
      })),
      api_endpoints: entities.flatMap((entity) => [
        { method: 'GET' as const, path: `/${entity}`, description: `List ${entity}` },
        { method: 'POST' as const, path: `/${entity}`, description: `Create a ${entity}` },
      ]),
      decisions: [{ decision: 'In-memory storage', rationale: 'The offline model keeps the design runnable without a database.' }],
    };
  },
};
