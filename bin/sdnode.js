#!/usr/bin/env node
// dist/ is compiled by `npm install`'s prepare step (tsc).
import { main } from '../dist/server/cli.js';

process.exitCode = await main(process.argv.slice(2));
