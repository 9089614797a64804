/**
 * @agentfleet/agents: the agent roles and the worker host that serves them.
 */
export { inputFilesFor, startAgentPool, type AgentPool, type AgentPoolOptions } from './pool.js';
export {
  MAX_STALLED_COUNT,
  createWorkerHost,
  type HostedJob,
  type HostedRole,
  type PhaseProcessor,
  type WorkerHost,
  type WorkerHostOptions,
  type WorkerHostSettings,
  type WorkerHostStart,
} from './worker-host.js';
export { STALL_LIMIT_REASON, isStallLimitFailure, recoverStalledOut, type StallRecoveryHost } from './stall-limit.js';
export { runRole, renderUserPrompt, outputJsonSchema, type RoleCallOptions, type RoleCallResult } from './run-role.js';
export { agentPoolSettings, createLlmClient, createRoleLlmClients, fleetPrices } from './llm.js';
export { BudgetWait, budgetGate, rateLimitGate, RateLimitDeferral, billedTokens, type BudgetGateLedger, type BudgetScope } from './gates.js';
export { writeArtifacts, planMarkdown, designMarkdown, reviewMarkdown, type ArtifactOptions } from './artifacts.js';
export {
  BUILTIN_ROLES,
  OFFLINE_LABEL,
  customRole,
  loadRoleModules,
  placeholderFor,
  roleModulePaths,
  coder,
  designer,
  planner,
  reviewer,
  summarizer,
  SummarySchema,
  type Summary,
  CodeSchema,
  DesignSchema,
  PlanSchema,
  ReviewSchema,
  type AgentRole,
  type Code,
  type Design,
  type Plan,
  type Review,
  type RoleInput,
} from './roles/index.js';
export {
  BUILTIN_TOOLS,
  ToolRegistry,
  createToolRegistry,
  hostAllowed,
  isLoopbackHost,
  loadToolSettings,
  parameterValidator,
  renderParameters,
  startToolPool,
  type FleetTool,
  type RegisteredTool,
  type ToolContext,
  type ToolPool,
  type ToolPoolOptions,
  type ToolSettings,
} from './tools/index.js';
