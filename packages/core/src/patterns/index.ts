/** Learning workflows from run history: mining (pure), reading history, suggesting workflows. */
export { minePatterns, miningOptions, type HistoryRun, type HistoryStep, type MiningOptions, type SequencePattern } from './mine.js';
export { historyRunOf, readRunHistory, stepLabel } from './history.js';
export { suggestWorkflow, type SuggestedWorkflow } from './suggest.js';
