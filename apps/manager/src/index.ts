export { startManager, type Manager, type ManagerOptions } from './manager.js';
