// Bundles the pages' scripts (with the npm graphql-ws client) into dist/, which is
// committed and compiled into the casefile binary, so `casefile serve --demo`
// serves the pages with no Node.js around. Run `npm run build` after editing src/.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/widget.js', 'src/inbox.js'],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  outdir: 'dist',
  logLevel: 'info',
});
for (const file of ['widget.html', 'inbox.html', 'style.css']) {
  copyFileSync(`src/${file}`, `dist/${file}`);
}
