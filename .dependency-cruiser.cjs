// dependency-cruiser (run by `npm run lint` as `depcruise`): the import rules ESLint's
// `import-x/no-cycle` cannot state.
//
// - No cycle of any kind between source files or between folders: `tsPreCompilationDeps` reads the
//   TypeScript before compilation, so `import type` edges count (import-x exempts them).
// - The domain layer (workflow, scheduler, errors, queue contracts) imports no I/O module.
// - @agentfleet/core imports neither @agentfleet/host nor an app, nor the OpenTelemetry SDK.

/** The domain layer's sources (tests beside them excluded). */
const DOMAIN = {
  path: [
    '^packages/core/src/workflow/',
    '^packages/core/src/scheduler/',
    '^packages/core/src/errors\\.ts$',
    '^packages/core/src/queues/contracts\\.ts$',
  ],
  pathNot: ['\\.test\\.ts$'],
};

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'Dependencies point one way: move the shared piece down into a module both import.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycle',
      severity: 'error',
      comment: 'Folders depend one way too: a folder whose files import another folder is not imported back by it.',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    {
      name: 'domain-imports-no-io',
      severity: 'error',
      comment:
        'The domain layer (workflow, scheduler, errors, queue contracts) is pure: it imports no Redis, BullMQ, ' +
        'file, network, database or telemetry SDK module.',
      from: DOMAIN,
      to: {
        // Resolved under node_modules, or the bare name when the package is not installed beside it.
        path: [
          '(^|/)node_modules/(ioredis|bullmq|pg)/',
          '(^|/)node_modules/@opentelemetry/sdk-',
          '^(ioredis|bullmq|pg)$',
          '^@opentelemetry/sdk-',
        ],
      },
    },
    {
      name: 'domain-imports-no-node-io',
      severity: 'error',
      comment: 'The domain layer reads no files and opens no sockets.',
      from: DOMAIN,
      to: {
        dependencyTypes: ['core'],
        path: ['^(node:)?(fs|fs/promises|net|tls|http|https|dgram|child_process)$'],
      },
    },
    {
      name: 'core-imports-no-host-or-app',
      severity: 'error',
      comment: '@agentfleet/core is below @agentfleet/host and the apps: it imports neither.',
      from: { path: '^packages/core/src/' },
      to: { path: ['^packages/host/', '^apps/'] },
    },
    {
      name: 'core-starts-no-sdk',
      severity: 'error',
      comment:
        'Starting the OpenTelemetry SDK, its exporters and the Prometheus listener is a process concern: ' +
        '@agentfleet/host does it for the apps; core speaks only @opentelemetry/api.',
      from: { path: '^packages/core/src/', pathNot: ['\\.test\\.ts$'] },
      to: {
        path: [
          '(^|/)node_modules/@opentelemetry/(sdk-|exporter-|resources/)',
          '^@opentelemetry/(sdk-|exporter-|resources$)',
        ],
      },
    },
  ],
  options: {
    // Source files only (tests may do anything); modules under node_modules are seen as the ends of
    // edges (for the I/O rules) but not read.
    exclude: { path: ['\\.test\\.tsx?$', '^(packages|apps)/[^/]+/dist/'] },
    doNotFollow: { path: ['node_modules'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'node', 'default'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.json'],
    },
    combinedDependencies: true,
  },
};
