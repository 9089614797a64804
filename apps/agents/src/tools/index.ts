/** Tool phases: the tools pool, the built-in tools and the registry of user tools. */
export { startToolPool, renderParameters, type ToolPool, type ToolPoolOptions } from './pool.js';
export { BUILTIN_TOOLS, ToolRegistry, createToolRegistry, type RegisteredTool } from './registry.js';
export { loadToolSettings, type ToolSettings } from './settings.js';
export { parameterValidator, type FleetTool, type ToolContext } from './tool.js';
export { hostAllowed, isLoopbackHost } from './http-request.js';
