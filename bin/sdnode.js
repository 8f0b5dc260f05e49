#!/usr/bin/env node
// The sdnode command. The TypeScript sources are compiled into dist/ by `npm install`'s prepare
// step (or `npm run build:ts` in a checkout).

let cli;
try {
  cli = await import('../dist/server/cli.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('cli.js')) {
    console.error('sdnode: dist/ has not been built; run npm run build:ts in the sdnode folder');
    process.exit(1);
  }
  throw error;
}

process.exitCode = await cli.main(process.argv.slice(2));
