// What the sdnode subcommands share: usage errors (exit code 2, naming the flag), flag values
// checked against a list, flag aliases, Ctrl-C handling and human-readable sizes.

import { parseArgs, type ParseArgsConfig } from 'node:util';

import { InvalidFieldError } from '../parse.js';

/** Exit code of a run stopped by Ctrl-C, as shells report a process ended by SIGINT. */
export const interruptedExitCode = 130;

/** Prints a usage error and returns the exit code 2; `help` is the command that explains the options. */
export function usageError(message: string, help = 'sdnode --help'): number {
  console.error(`sdnode: ${message}\nRun ${help} for the options.`);
  return 2;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
type Parsed<T extends OptionsConfig> = ReturnType<typeof parseArgs<{ options: T; allowPositionals: true }>>;

/**
 * Parses the flags of `sdnode <command>`. Returns them, or the exit code when there is nothing more
 * to do: 0 after printing `usage` for --help, 2 after a usage error.
 */
export function parseCommand<T extends OptionsConfig>(
  command: string, argv: string[], options: T, usage: string,
): Parsed<T> | number {
  let parsed: Parsed<T>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (error) {
    return usageError(errorMessage(error), `sdnode ${command} --help`);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    return 0;
  }
  return parsed;
}

export function oneOf<T extends string>(value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value !== undefined && !(allowed as readonly string[]).includes(value)) {
    throw new InvalidFieldError(flag, `Expected one of ${allowed.join(', ')} for ${flag} but received ${value}`);
  }
  return value as T | undefined;
}

/**
 * The value of a flag that has a second name (stable-diffusion.cpp's spelling of it); giving both
 * with different values is an error naming both.
 */
export function eitherFlag(values: Record<string, unknown>, flag: string, alias: string): string | undefined {
  const [first, second] = [values[flag], values[alias]] as (string | undefined)[];
  if (first !== undefined && second !== undefined && first !== second) {
    throw new InvalidFieldError(`--${flag}`, `--${flag} ${first} and --${alias} ${second} disagree; give one of them`);
  }
  return first ?? second;
}

/**
 * Calls `stop` on the first Ctrl-C (or SIGTERM) and exits at once with code 130 on the second.
 * Returns the function that removes the handlers.
 */
export function onInterrupt(stop: () => void): () => void {
  let interrupted = false;
  const handler = (): void => {
    if (interrupted) {
      console.error('\nsdnode: stopped at once');
      process.exit(interruptedExitCode);
    }
    interrupted = true;
    stop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** "812 KB", "1719 MB", "2.13 GB": the unit that keeps the number short, powers of 1024. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(bytes >= 100 * 2 ** 20 ? 0 : 1)} MB`;
  return `${(bytes / 2 ** 10).toFixed(1)} KB`;
}

/** The message of an error, as one line for the terminal. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
