import { defineConfig } from 'vite';

/**
 * The console is served by the manager under `/ui/`, so every asset URL starts there. No dev-only
 * plugins: Vite 8 compiles TSX itself (automatic JSX runtime), which keeps `npm ci` fast.
 */
export default defineConfig({
  base: '/ui/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1500,
    rolldownOptions: {
      // React libraries mark their modules "use client" (for server components); meaningless in a browser bundle.
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
});
