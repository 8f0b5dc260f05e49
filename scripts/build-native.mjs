#!/usr/bin/env node
// Builds ggml and native/engine as static libraries with CMake and prints, on stdout, what the
// addon must link (binding.gyp expands it with <!@(...)). Everything else goes to stderr, since
// gyp reads stdout.
//
// ggml comes from the llama.cpp source bundle inside the npm package node-llama-cpp (pinned):
// only its tarball is fetched (npm caches it), the ggml/ folder is extracted into the git-ignored
// .native-build/, and nothing third-party is ever committed.
//
// Options (environment):
//   SDNODE_CUDA=ON       also build the CUDA backend (needs nvcc; CUDA_HOME or /usr/local/cuda)
//   SDNODE_CUDA_ARCH=90  GPU architectures to compile for (CMAKE_CUDA_ARCHITECTURES; default: the
//                        GPUs of this machine, or a portable list when it has none)
//   SDNODE_METAL=OFF     skip Metal on macOS (on by default on Apple Silicon; ON opts in on Intel)
//   SDNODE_PORTABLE=1    no -march=native: code that runs on any x86-64-v3 / armv8 machine (prebuilds)
//   SDNODE_JOBS=N        parallel compile jobs (default: all cores)
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LLAMA_PACKAGE = 'node-llama-cpp@3.22.1';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(root, '.native-build');
const ggmlSource = path.join(work, 'llama-3.22.1');

function log(message) {
  process.stderr.write(`sdnode build: ${message}\n`);
}

function fail(message) {
  process.stderr.write(`\nsdnode build failed: ${message}\n\n`);
  process.exit(1);
}

function flag(name, fallback) {
  const value = (process.env[name] ?? '').trim().toUpperCase();
  if (value === '') return fallback;
  return ['1', 'ON', 'TRUE', 'YES'].includes(value);
}

function has(command, args = ['--version']) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: ['ignore', 2, 2], ...options });
  if (result.error) fail(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status}`);
}

function checkTools(cuda) {
  const missing = [];
  if (!has('cmake')) missing.push('cmake 3.18 or newer (Debian/Ubuntu: apt-get install cmake; macOS: brew install cmake)');
  if (!has('git')) missing.push('git (Debian/Ubuntu: apt-get install git; macOS: xcode-select --install)');
  if (process.platform !== 'win32' && !has('c++') && !has('g++') && !has('clang++')) {
    missing.push('a C++17 compiler (Debian/Ubuntu: apt-get install g++; macOS: xcode-select --install)');
  }
  if (cuda && !has('nvcc')) missing.push('nvcc from the CUDA toolkit (SDNODE_CUDA=ON was given)');
  if (missing.length > 0) fail(`missing build tools:\n  - ${missing.join('\n  - ')}`);
}

function ensureGgmlSource() {
  if (fs.existsSync(path.join(ggmlSource, 'ggml', 'CMakeLists.txt'))) return;
  log(`fetching ggml from ${LLAMA_PACKAGE} (npm registry)`);
  const download = path.join(work, 'download');
  fs.rmSync(download, { recursive: true, force: true });
  fs.mkdirSync(download, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const packed = execFileSync(npm, ['pack', LLAMA_PACKAGE, '--silent', '--pack-destination', download], {
    cwd: download, encoding: 'utf8', stdio: ['ignore', 'pipe', 2],
  }).trim().split('\n').pop();
  const tarball = path.join(download, packed);
  run('tar', ['-xzf', tarball, '-C', download, 'package/llama/gitRelease.bundle']);
  const bare = path.join(download, 'llama.git');
  run('git', ['clone', '--quiet', '--bare', path.join(download, 'package/llama/gitRelease.bundle'), bare]);
  const staging = `${ggmlSource}.tmp`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  const archive = spawnSync('git', ['--git-dir', bare, 'archive', '--format=tar', 'HEAD', 'ggml'], {
    maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 2],
  });
  if (archive.status !== 0) fail('could not extract ggml/ from the llama.cpp bundle');
  run('tar', ['-x', '-C', staging], { input: archive.stdout, stdio: ['pipe', 2, 2] });
  fs.renameSync(staging, ggmlSource);
  fs.rmSync(download, { recursive: true, force: true });
}

// SDNODE_CUDA_ARCH, else this machine's GPUs (one architecture each, the fastest build), else
// (a build machine without a GPU) ggml's own list for CUDA 12/13. CMake's "native" fails there.
function cudaArchitectures() {
  const given = (process.env.SDNODE_CUDA_ARCH ?? '').trim();
  if (given !== '') return given;
  const smi = spawnSync('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], { encoding: 'utf8' });
  const found = smi.status === 0 ? [...new Set(smi.stdout.split('\n').map((l) => l.trim().replace('.', '')).filter((l) => /^\d+$/.test(l)))] : [];
  if (found.length > 0) return found.join(';');
  log('no GPU found: compiling CUDA code for architectures 75-virtual;80-virtual;86-real;89-real;90-virtual (SDNODE_CUDA_ARCH to choose)');
  return '75-virtual;80-virtual;86-real;89-real;90-virtual';
}

function cmakeOptions() {
  const mac = process.platform === 'darwin';
  const cuda = flag('SDNODE_CUDA', false);
  const metal = mac && flag('SDNODE_METAL', process.arch === 'arm64');
  const portable = flag('SDNODE_PORTABLE', false);
  // GCC ships libgomp everywhere; Apple's clang has no OpenMP.
  const openmp = process.platform === 'linux' && flag('SDNODE_OPENMP', true);
  const options = {
    CMAKE_BUILD_TYPE: 'Release',
    SDNODE_GGML_DIR: path.join(ggmlSource, 'ggml'),
    GGML_NATIVE: portable ? 'OFF' : 'ON',
    GGML_CUDA: cuda ? 'ON' : 'OFF',
    GGML_METAL: metal ? 'ON' : 'OFF',
    SDNODE_OPENMP: openmp ? 'ON' : 'OFF',
  };
  // ggml's BLAS backend (on by default on macOS) would only serve a scheduler we never give it.
  if (mac) options.GGML_BLAS = 'OFF';
  if (portable && process.arch === 'x64') Object.assign(options, { GGML_AVX: 'ON', GGML_AVX2: 'ON', GGML_FMA: 'ON', GGML_F16C: 'ON', GGML_BMI2: 'ON' });
  if (cuda) {
    // NCCL only serves several GPUs, and we would have to link it.
    options.GGML_CUDA_NCCL = 'OFF';
    options.CMAKE_CUDA_ARCHITECTURES = cudaArchitectures();
  }
  if (has('ccache')) {
    Object.assign(options, { CMAKE_C_COMPILER_LAUNCHER: 'ccache', CMAKE_CXX_COMPILER_LAUNCHER: 'ccache' });
    if (cuda) options.CMAKE_CUDA_COMPILER_LAUNCHER = 'ccache';
  }
  return { options, cuda, metal, openmp };
}

function linkItems(buildDir, { cuda, metal, openmp }) {
  const lib = (name) => path.join(buildDir, process.platform === 'win32' ? `${name}.lib` : `lib${name}.a`);
  const items = [lib('sdengine')];
  if (cuda) items.push(lib('ggml-cuda'));
  if (metal) items.push(lib('ggml-metal'));
  items.push(lib('ggml'), lib('ggml-cpu'), lib('ggml-base'));
  if (cuda) {
    const cudaHome = process.env.CUDA_HOME ?? process.env.CUDA_PATH ?? '/usr/local/cuda';
    // lib64/stubs holds a libcuda.so to link against where only the driver's libcuda.so.1 exists.
    for (const dir of ['lib64', 'lib64/stubs', 'targets/x86_64-linux/lib', 'targets/x86_64-linux/lib/stubs']) {
      if (fs.existsSync(path.join(cudaHome, dir))) items.push(`-L${path.join(cudaHome, dir)}`);
    }
    items.push('-lcudart_static', '-lcublas_static', '-lcublasLt_static', '-lculibos', '-lcuda', '-ldl', '-lrt');
  }
  if (process.platform === 'darwin') {
    const framework = (name) => `$(SDKROOT)/System/Library/Frameworks/${name}.framework`;
    items.push(framework('Accelerate'), framework('Foundation'));
    if (metal) items.push(framework('Metal'), framework('MetalKit'));
  }
  if (openmp) items.push('-fopenmp');
  if (process.platform === 'linux') items.push('-lpthread', '-ldl');
  return items;
}

function main() {
  const config = cmakeOptions();
  checkTools(config.cuda);
  fs.mkdirSync(work, { recursive: true });
  ensureGgmlSource();
  const key = crypto.createHash('sha1').update(JSON.stringify(config.options)).digest('hex').slice(0, 10);
  const buildDir = path.join(work, `cmake-${key}`);
  const defines = Object.entries(config.options).map(([k, v]) => `-D${k}=${v}`);
  const started = Date.now();
  run('cmake', ['-S', path.join(root, 'native'), '-B', buildDir, '--log-level=WARNING', ...defines]);
  const jobs = String(Number(process.env.SDNODE_JOBS) || os.availableParallelism());
  run('cmake', ['--build', buildDir, '--config', 'Release', '--parallel', jobs]);
  log(`native libraries ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${buildDir})`);
  process.stdout.write(linkItems(path.join(buildDir, 'lib'), config).join('\n') + '\n');
}

main();
