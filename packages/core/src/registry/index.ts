/** The template registry and the HTTP API's keys and permissions, stored in Redis. */
export {
  TemplateRegistry,
  templateForViewer,
  visibleEndActionTarget,
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
export { RunLabelStore, type EndActionStatus, type RunLabels } from './run-labels.js';
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
