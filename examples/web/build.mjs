// Bundles the pages' TypeScript (with urql and the npm graphql-ws client) into dist/,
// which is committed and compiled into the casefile binary, so `casefile serve --demo`
// serves the pages with no Node.js around. esbuild strips the types without checking
// them: `npm run typecheck` does that. Run `npm run build` after editing src/.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/widget.ts', 'src/inbox.ts'],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  // urql reads it to leave out its development checks and debug events.
  define: { 'process.env.NODE_ENV': '"production"' },
  outdir: 'dist',
  logLevel: 'info',
});
for (const file of ['widget.html', 'inbox.html', 'style.css']) {
  copyFileSync(`src/${file}`, `dist/${file}`);
}
