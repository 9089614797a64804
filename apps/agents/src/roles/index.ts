import { coder } from './coder.js';
import { designer } from './designer.js';
import { planner } from './planner.js';
import { reviewer } from './reviewer.js';
import { summarizer } from './summarizer.js';
import type { AgentRole } from './role.js';

export { coder, CodeSchema, type Code } from './coder.js';
export { designer, DesignSchema, type Design } from './designer.js';
export { planner, PlanSchema, type Plan } from './planner.js';
export { reviewer, ReviewSchema, type Review } from './reviewer.js';
export { summarizer, SummarySchema, type Summary } from './summarizer.js';
export { OFFLINE_LABEL, type AgentRole, type RoleInput } from './role.js';
export { customRole, loadRoleModules, placeholderFor, roleModulePaths } from './custom.js';

/** The built-in roles, by name. */
export const BUILTIN_ROLES: Readonly<Record<string, AgentRole>> = {
  planner: planner,
  designer: designer,
  coder: coder,
  reviewer: reviewer,
  summarizer: summarizer,
};
