// Bundles GraphiQL (with React, the explorer plugin and the graphql-ws client) into
// dist/, which is committed and compiled into the casefile binary: GET /graphql
// serves dist/index.html, which loads /graphiql/graphiql.css and /graphiql/graphiql.js,
// so GraphiQL works with no CDN and no internet. Run `npm run build` after editing
// src/ or package.json. The build is deterministic: CI rebuilds and compares.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const common = {
  bundle: true,
  minify: true,
  target: 'es2020',
  legalComments: 'external',
  metafile: true,
  write: false,
  logLevel: 'warning',
};

// GraphiQL's stylesheet inlines Roboto and Fira Code (34 @font-face rules, ~350 KB
// of base64 woff2). src/graphiql.css points its font variables at system fonts
// instead, so the rules are dropped here.
const dropFontFaces = {
  name: 'drop-font-faces',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]graphiql[\\/]dist[\\/]style\.css$/ }, (args) => {
      const css = readFileSync(args.path, 'utf8');
      const stripped = css.replace(/@font-face\s*\{[^}]*\}/g, '');
      if (stripped === css) throw new Error(`no @font-face rule found in ${args.path}`);
      return { contents: stripped, loader: 'css' };
    });
  },
};

// graphql ships CommonJS (main) and ESM (module). One require('graphql') in the
// explorer makes esbuild take the CommonJS build for everyone, which cannot be
// tree-shaken; pointing every import at the ESM build saves ~80 KB and still
// bundles a single copy (checked below).
const graphqlEsm = {
  name: 'graphql-esm',
  setup(b) {
    const index = fileURLToPath(new URL('node_modules/graphql/index.mjs', import.meta.url));
    b.onResolve({ filter: /^graphql$/ }, () => ({ path: index }));
  },
};

const js = await build({
  ...common,
  entryPoints: ['src/index.jsx'],
  outfile: 'dist/graphiql.js',
  format: 'esm',
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  plugins: [graphqlEsm],
});
if (Object.keys(js.metafile.inputs).some((p) => /node_modules\/graphql\/.*\.js$/.test(p))) {
  throw new Error('the CommonJS build of graphql got into the bundle next to the ESM one');
}
const css = await build({
  ...common,
  entryPoints: ['src/graphiql.css'],
  outfile: 'dist/graphiql.css',
  plugins: [dropFontFaces],
});

// Everything bundled, checked for what must never be in it.
const outputs = [...js.outputFiles, ...css.outputFiles];
const out = (name) => outputs.find((f) => f.path.endsWith(`/dist/${name}`));
const bundleJs = out('graphiql.js').text;
const bundleCss = out('graphiql.css').text;
for (const [pattern, what] of [
  [/@import/, 'a CSS @import'],
  [/url\(\s*['"]?(https?:)?\/\//, 'a remote url()'],
  [/@font-face/, 'an @font-face rule'],
]) {
  if (pattern.test(bundleCss)) throw new Error(`dist/graphiql.css has ${what}`);
}
if (bundleJs.includes('process.env.NODE_ENV')) throw new Error('process.env left in dist/graphiql.js');

// The licenses of every package that went into the bundles, plus the legal
// comments esbuild found in their sources.
const packages = new Map();
for (const input of [...Object.keys(js.metafile.inputs), ...Object.keys(css.metafile.inputs)]) {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) continue;
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  const name = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  const dir = input.slice(0, at) + 'node_modules/' + name;
  packages.set(dir, name);
}
let legal = 'Third-party software in graphiql.js and graphiql.css, with its licenses.\n';
for (const dir of [...packages.keys()].sort((a, b) => packages.get(a).localeCompare(packages.get(b)) || a.localeCompare(b))) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licenseFile = readdirSync(dir).find((f) => /^(licen[cs]e|copying)([-.][\w.-]*)?$/i.test(f));
  legal += `\n${'='.repeat(78)}\n${pkg.name}@${pkg.version} (${pkg.license ?? 'see below'})\n\n`;
  legal += licenseFile
    ? readFileSync(join(dir, licenseFile), 'utf8').trim() + '\n'
    : `No license file in the package; its package.json declares the ${pkg.license} license` +
      (pkg.author ? `, author ${typeof pkg.author === 'string' ? pkg.author : pkg.author.name}` : '') +
      (pkg.repository ? `, source ${pkg.repository.url ?? pkg.repository}` : '') + '.\n';
}
const comments = outputs.filter((f) => f.path.endsWith('.LEGAL.txt')).map((f) => f.text.trim()).filter(Boolean);
if (comments.length) {
  legal += `\n${'='.repeat(78)}\nLegal comments found in the bundled sources\n\n${comments.join('\n\n')}\n`;
}

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist', { recursive: true });
writeFileSync('dist/graphiql.js', bundleJs);
writeFileSync('dist/graphiql.css', bundleCss);
writeFileSync('dist/LICENSES.txt', legal);
copyFileSync('src/index.html', 'dist/index.html');
for (const file of readdirSync('dist').sort()) {
  console.log(`  dist/${file.padEnd(14)} ${(readFileSync(join('dist', file)).length / 1024).toFixed(1)} KB`);
}
