/** The template registry and the HTTP API's keys and permissions, stored in Redis. */
export {
  TemplateRegistry,
  type TemplateDetail,
  type TemplateListQuery,
  type TemplateSummary,
} from './template-registry.js';
export {
  ADMIN_USER_TYPE,
  AccessStore,
  hashApiKey,
  parseConfiguredKeys,
  type ApiKeyRecord,
  type ConfiguredKey,
} from './access.js';
export { RunLabelStore, conversationScope, type EndActionStatus, type RunLabels } from './run-labels.js';
export {
  exportTemplate,
  importTemplates,
  libraryEntry,
  loadLibrary,
  sameWorkflow,
  searchLibrary,
  serializeWorkflow,
  suggestByTools,
  type ImportOutcome,
  type LibraryEntry,
  type LibraryHit,
  type LibraryQuery,
  type ToolSuggestion,
  type WorkflowFileFormat,
} from './library.js';
export {
  ROLE_NAME_PATTERN,
  RoleFileSchema,
  RoleRegistry,
  compileOutputSchema,
  outputSchemaProblems,
  parseRoleDefinition,
  parseRoleText,
  type RegisteredRole,
  type RoleDefinition,
} from './role-registry.js';
export {
  MIN_TRIGGER_SECRET_LENGTH,
  TRIGGER_NAME_PATTERN,
  TriggerInputSchema,
  TriggerRegistry,
  generateTriggerSecret,
  renderTrigger,
  seenTtlS,
  viewTrigger,
  type RenderedTrigger,
  type StoredTrigger,
  type TriggerInput,
  type TriggerView,
} from './trigger-registry.js';
export { MIN_WEBHOOK_SECRET_LENGTH, WebhookSecretStore } from './webhook-secrets.js';
