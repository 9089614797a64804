// ESLint flat config (ESLint 10, typescript-eslint 8, eslint-plugin-import-x 4).
//
// - Sources (`packages/*/src`, `apps/*/src`): type-aware rules through the TypeScript project
//   service, which finds each package's tsconfig.json.
// - Files no package tsconfig includes (tests under `test/`, `*.test.ts` beside sources, `bench/`,
//   the documentation's example modules under `examples/`, root `*.ts` such as vitest.config.ts):
//   type information from `tsconfig.test.json`.
// - Plain JavaScript (this file, `apps/cli/bin/fleet.js`): ESLint's recommended rules, Node globals.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Files outside every package tsconfig: typed through tsconfig.test.json instead of the project service. */
const outsidePackageBuilds = ['test/**/*.ts', '**/*.test.ts', 'bench/**/*.ts', 'examples/**/*.ts', '*.ts'];
/** Test code, where a few rules are relaxed. */
const testFiles = ['test/**/*.ts', '**/*.test.ts'];

export default defineConfig(
  globalIgnores(['**/dist/', '**/node_modules/', 'runs/', 'coverage/', 'bench/results/', '**/*.tsbuildinfo']),

  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },

  js.configs.recommended,

  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: { ...globals.node } },
  },

  {
    // `.tsx`: the browser console (apps/console), typed through its own tsconfig.
    files: ['**/*.ts', '**/*.tsx'],
    extends: [tseslint.configs.recommendedTypeChecked],
    plugins: { 'import-x': importX },
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    settings: {
      'import-x/extensions': ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.mts', '.cts'] },
      'import-x/resolver-next': [
        createNodeResolver({
          // NodeNext: `./foo.js` in a .ts file means `./foo.ts`.
          extensionAlias: { '.js': ['.ts', '.js'], '.mjs': ['.mts', '.mjs'], '.cjs': ['.cts', '.cjs'] },
          extensions: ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json', '.node'],
          conditionNames: ['types', 'import', 'node', 'default'],
        }),
      ],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // A switch without `default` must name every member of the union; a `default:` branch is an
      // explicit "everything else" (use `const _exhaustive: never = value` in it to keep the check).
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports' },
      ],
      // With verbatimModuleSyntax, `import { type A } from 'x'` keeps a side-effect `import 'x'`.
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
      // Runtime cycles, reported in the editor. This rule skips type-only imports (no option counts
      // them); dependency-cruiser (.dependency-cruiser.cjs, run by `npm run lint`) forbids every cycle.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },

  {
    files: outsidePackageBuilds,
    languageOptions: {
      parserOptions: {
        projectService: false,
        project: ['./tsconfig.test.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },

  {
    files: testFiles,
    rules: {
      // Tests poke at JSON payloads, mocks and wire formats; flag `any` leaks, don't fail on them.
      '@typescript-eslint/no-unsafe-argument': 'warn',
      '@typescript-eslint/no-unsafe-assignment': 'warn',
      '@typescript-eslint/no-unsafe-call': 'warn',
      '@typescript-eslint/no-unsafe-member-access': 'warn',
      '@typescript-eslint/no-unsafe-return': 'warn',
      // `expect(obj.method).toHaveBeenCalled()` and vi.fn() spies pass methods around unbound.
      '@typescript-eslint/unbound-method': 'off',
      // Async test bodies and hooks without `await` are normal.
      '@typescript-eslint/require-await': 'off',
    },
  },
);
