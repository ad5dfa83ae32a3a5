#!/usr/bin/env node
// Writes chain/artifacts/<Name>.json = {abi, bytecode} from forge's out/ for the deployable contracts,
// so `cargo build` needs neither node nor forge. With --check, compares instead of writing and exits 1
// on any difference (CI runs it after a fresh `forge build`).
'use strict';
const fs = require('fs');
const path = require('path');

const CONTRACTS = ['UMC', 'TMC', 'MMC'];
const root = path.join(__dirname, '..');
const check = process.argv.includes('--check');
let stale = [];

for (const name of CONTRACTS) {
  const built = JSON.parse(fs.readFileSync(path.join(root, 'out', `${name}.sol`, `${name}.json`), 'utf8'));
  const artifact = { abi: built.abi, bytecode: built.bytecode.object };
  const text = JSON.stringify(artifact, null, 2) + '\n';
  const target = path.join(root, 'artifacts', `${name}.json`);
  if (check) {
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (current !== text) stale.push(path.relative(process.cwd(), target));
  } else {
    fs.writeFileSync(target, text);
    console.log(`wrote ${path.relative(process.cwd(), target)} (${(artifact.bytecode.length - 2) / 2} bytes of bytecode)`);
  }
}
if (stale.length) {
  console.error(`contract artifacts are out of date: ${stale.join(', ')}\nrun: tools/setup.sh && chain/scripts/build-contracts.sh`);
  process.exit(1);
}
if (check) console.log('contract artifacts are up to date');
